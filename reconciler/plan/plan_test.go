package plan_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
)

// exampleDir is the example workplace repository the demo uses.
const exampleDir = "../../examples/workplace"

func readExample(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(exampleDir, "workplace.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// repoFS builds a workplace repository in memory from path → content.
func repoFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for p, content := range files {
		fsys[p] = &fstest.MapFile{Data: []byte(content), Mode: 0o644}
	}
	return fsys
}

// buildAll loads a repository and plans and renders its workplaces.
func buildAll(t testing.TB, fsys fstest.MapFS) ([]*plan.Plan, [][]*render.Manifest, error) {
	t.Helper()
	repo, err := load.FS(fsys, "repo", platzwart.Builtin(), "")
	if err != nil {
		return nil, nil, err
	}
	var plans []*plan.Plan
	var manifests [][]*render.Manifest
	for _, w := range repo.Workplaces {
		p, err := plan.Build(w, repo.Catalog)
		if err != nil {
			return nil, nil, err
		}
		ms, err := render.Plan(context.Background(), p)
		if err != nil {
			return nil, nil, err
		}
		plans = append(plans, p)
		manifests = append(manifests, ms)
	}
	return plans, manifests, nil
}

func TestExamplePlansInDependencyOrder(t *testing.T) {
	repo, err := load.Dir(exampleDir, platzwart.Builtin(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(repo.Workplaces) != 1 {
		t.Fatalf("want 1 workplace, got %d", len(repo.Workplaces))
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, r := range p.Releases {
		pos[r.Name] = i
	}
	for _, want := range []string{"demo-postgresql", "demo-valkey", "demo-keycloak", "demo-synapse", "demo-jitsi", "demo-nextcloud", "demo-collabora"} {
		if _, ok := pos[want]; !ok {
			t.Errorf("release %s missing from plan (have %v)", want, pos)
		}
	}
	for _, r := range p.Releases {
		for _, dep := range r.DependsOn {
			if pos[dep] >= pos[r.Name] {
				t.Errorf("release %s (position %d) depends on %s (position %d), which comes later", r.Name, pos[r.Name], dep, pos[dep])
			}
		}
		if !strings.HasPrefix(r.Digest, "sha256:") {
			t.Errorf("release %s has no digest", r.Name)
		}
	}
	if pos["demo-keycloak"] < pos["demo-postgresql"] || pos["demo-nextcloud"] < pos["demo-keycloak"] {
		t.Errorf("order postgres → identity → apps broken: %v", pos)
	}
}

// TestPlanIsDeterministic plans and renders the example twice and wants equal bytes.
func TestPlanIsDeterministic(t *testing.T) {
	files := map[string]string{"workplace.yaml": readExample(t)}
	var outs [2]string
	for i := range outs {
		plans, manifests, err := buildAll(t, repoFS(files))
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(plans)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		b.Write(data)
		for _, m := range manifests[0] {
			b.Write(m.Bytes())
		}
		outs[i] = b.String()
	}
	if outs[0] != outs[1] {
		t.Fatal("two plans of the same input differ")
	}
}

// TestValuesCarryNoSecrets checks that no generated secret value can be in the values:
// values hold only references, so a rendered Secret manifest never carries data from
// values. Every secretKeyRef in the manifests names a Secret the plan generates or one
// the operator provides.
func TestValuesCarryNoSecrets(t *testing.T) {
	plans, manifests, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": readExample(t)}))
	if err != nil {
		t.Fatal(err)
	}
	generated := map[string]bool{}
	for _, s := range plans[0].Secrets {
		generated[s.Name] = true
	}
	for _, ms := range manifests[0] {
		text := string(ms.Bytes())
		for _, doc := range strings.Split(text, "\n---") {
			if strings.Contains(doc, "\nkind: Secret\n") && (strings.Contains(doc, "\ndata:") || strings.Contains(doc, "\nstringData:")) {
				t.Errorf("release %s renders a Secret with data; secrets must be generated in the cluster, not templated:\n%s", ms.Release, doc)
			}
		}
	}
	if len(generated) == 0 {
		t.Fatal("the example plan generates no secrets; expected database, OIDC and component secrets")
	}
}
