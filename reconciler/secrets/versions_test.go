package secrets_test

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
	"github.com/platzwart/platzwart/reconciler/secrets"
	"sigs.k8s.io/yaml"
)

func examplePlan(t *testing.T) *plan.Plan { return examplePlanWith(t, "") }

// examplePlanWith plans the example with video set to the given component ("" = as is).
func examplePlanWith(t *testing.T, video string) *plan.Plan {
	t.Helper()
	dir := "../../examples/workplace"
	if video != "" {
		data, err := os.ReadFile(filepath.Join(dir, "workplace.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		dir = t.TempDir()
		s := strings.Replace(string(data), "video: jitsi ", "video: "+video+" ", 1)
		if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := load.Dir(dir, platzwart.Builtin(), "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// podAnnotations renders a release and returns, per workload ("Kind/name"), the value
// of the secret-versions pod template annotation.
func podAnnotations(t *testing.T, rel *plan.Release) map[string]string {
	t.Helper()
	m, err := render.Release(t.Context(), rel)
	if err != nil {
		t.Fatalf("render %s: %v", rel.Name, err)
	}
	out := map[string]string{}
	for _, doc := range strings.Split(m.Manifest, "\n---") {
		var obj struct {
			Kind     string
			Metadata struct{ Name string }
			Spec     struct {
				Template struct {
					Metadata struct{ Annotations map[string]string }
				}
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		switch obj.Kind {
		case "Deployment", "StatefulSet", "DaemonSet":
			out[obj.Kind+"/"+obj.Metadata.Name] = obj.Spec.Template.Metadata.Annotations[secrets.AnnotationVersions]
		}
	}
	return out
}

// TestWithVersionsAnnotatesWorkloadsAndDigests folds Secret versions into the
// example's plan: every workload of a release referencing generated Secrets carries
// the hash (Deployments and StatefulSets alike), the same versions give the same
// digests, and a changed Secret changes the digest and annotation of exactly the
// releases referencing it: postgresql (the provider) and keycloak (the consumer) for
// keycloak's database password. The input plan is not changed.
func TestWithVersionsAnnotatesWorkloadsAndDigests(t *testing.T) {
	p := examplePlan(t)
	orig := map[string]string{}
	for _, r := range p.Releases {
		orig[r.Name] = r.Digest
	}
	v := secrets.Versions{}
	for _, s := range p.Secrets {
		v[s.Name] = "sha256:one-" + s.Name
	}
	a, err := secrets.WithVersions(p, v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := secrets.WithVersions(p, maps.Clone(v))
	if err != nil {
		t.Fatal(err)
	}
	v2 := maps.Clone(v)
	v2["demo-keycloak-db-keycloak"] = "sha256:two"
	c, err := secrets.WithVersions(p, v2)
	if err != nil {
		t.Fatal(err)
	}
	var changed []string
	for i, r := range p.Releases {
		if r.Digest != orig[r.Name] {
			t.Errorf("release %s: WithVersions changed the input plan", r.Name)
		}
		if a.Releases[i].Digest != b.Releases[i].Digest {
			t.Errorf("release %s: equal versions, different digests", r.Name)
		}
		if c.Releases[i].Digest != a.Releases[i].Digest {
			changed = append(changed, r.Component)
		}
		if len(secrets.Referenced(p, r)) == 0 {
			continue
		}
		before, after := podAnnotations(t, a.Releases[i]), podAnnotations(t, c.Releases[i])
		if len(before) == 0 {
			t.Errorf("release %s references Secrets but renders no workload", r.Name)
		}
		for w, ann := range before {
			if !strings.HasPrefix(ann, "sha256:") {
				t.Errorf("release %s: %s has no %s annotation", r.Name, w, secrets.AnnotationVersions)
			}
			if (after[w] != ann) != (c.Releases[i].Digest != a.Releases[i].Digest) {
				t.Errorf("release %s: %s annotation %q → %q, digest changed: %v", r.Name, w, ann, after[w], c.Releases[i].Digest != a.Releases[i].Digest)
			}
		}
	}
	if strings.Join(changed, ",") != "postgresql,keycloak" {
		t.Errorf("releases changed by keycloak's database password: %v, want postgresql,keycloak", changed)
	}
}

// TestWithVersionsRendersEveryComponent renders every release of the example with
// Jitsi and with BigBlueButton after WithVersions: every chart that references Secrets
// gets the annotation on its workloads (found by decoding the rendered manifest).
func TestWithVersionsRendersEveryComponent(t *testing.T) {
	for _, video := range []string{"jitsi", "bigbluebutton"} {
		p := examplePlanWith(t, video)
		v := secrets.Versions{}
		for _, s := range p.Secrets {
			v[s.Name] = secrets.Missing
		}
		pv, err := secrets.WithVersions(p, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range pv.Releases {
			anns := podAnnotations(t, r)
			if len(secrets.Referenced(p, r)) > 0 && len(anns) == 0 {
				t.Errorf("video %s: release %s references Secrets but has no annotated workload", video, r.Name)
			}
		}
	}
}
