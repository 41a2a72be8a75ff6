package render

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/release"

	"github.com/platzwart/platzwart/reconciler/plan"
)

// unrenderable is the template of a chart that fails whenever it is rendered.
const unrenderable = `{{ fail "rendered although its stored manifest was given" }}`

// named gives a test release its own name and component.
func named(rel *plan.Release, component string) *plan.Release {
	rel.Name, rel.Component, rel.Capability = "demo-"+component, component, component
	return rel
}

// twoReleases is a plan of the workplace demo with a release "files" rendering
// files and a release "chat" rendering chat.
func twoReleases(files, chat map[string]string) *plan.Plan {
	return &plan.Plan{Workplace: "demo", File: "repo/workplace.yaml", Namespace: "demo", Releases: []*plan.Release{
		named(testRelease(files, nil), "files"),
		named(testRelease(chat, nil), "chat"),
	}}
}

// TestPlanReusingRendersOnlyWhatIsNotStored: a release with a stored manifest is not
// rendered (its chart fails when it is: PlanWith shows that), its stored manifest and
// hooks take its place in plan order, and the other releases are rendered.
func TestPlanReusingRendersOnlyWhatIsNotStored(t *testing.T) {
	cm := map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: files}\n"}
	p := twoReleases(cm, map[string]string{"fail.yaml": unrenderable})
	_, err := PlanWith(context.Background(), p, Options{})
	wantErr(t, err, `repo/workplace.yaml: Workplace "demo": component "chat"`, "rendered although its stored manifest was given")

	stored := Stored{
		Manifest: "---\n# Source: chat/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: chat}\n",
		Hooks:    []*release.Hook{{Name: "setup", Path: "chat/templates/job.yaml", Manifest: "apiVersion: batch/v1\nkind: Job\nmetadata: {name: setup}\n"}},
	}
	ms, err := PlanReusing(context.Background(), p, map[string]Stored{"demo-chat": stored}, Options{})
	if err != nil {
		t.Fatalf("with the stored manifest of demo-chat: %v", err)
	}
	if len(ms) != 2 || ms[0].Release != "demo-files" || ms[1].Release != "demo-chat" {
		t.Fatalf("got %d manifests %v, want demo-files then demo-chat", len(ms), releases(ms))
	}
	if !strings.Contains(ms[0].Manifest, "name: files") || ms[0].StoredSize == 0 {
		t.Errorf("demo-files was not rendered: size %d, manifest %q", ms[0].StoredSize, ms[0].Manifest)
	}
	if m := ms[1]; m.Manifest != stored.Manifest || len(m.Hooks) != 1 || m.Hooks[0] != stored.Hooks[0] || m.Component != "chat" {
		t.Errorf("demo-chat is %+v, want the stored manifest and hook of component chat", m)
	}

	// Ctrl-C still stops the releases that are rendered.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := PlanReusing(ctx, p, map[string]Stored{"demo-chat": stored}, Options{}); err == nil {
		t.Error("rendered after Ctrl-C")
	}
}

// TestPlanReusingChecksStoredReleases: the guards run over stored manifests as over
// rendered ones. A host or a node port that a rendered release and a stored one both
// claim is refused naming both, as is a stored object outside the namespace.
func TestPlanReusingChecksStoredReleases(t *testing.T) {
	ingress := func(host string) string {
		return fmt.Sprintf("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec:\n  rules:\n  - host: %s\n    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}\n", host)
	}
	service := func(port int) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: NodePort\n  ports: [{port: 80, nodePort: %d}]\n", port)
	}
	cases := map[string]struct {
		rendered, stored string
		want             []string // empty: accepted
	}{
		"host served twice": {
			rendered: ingress("x.example.org"), stored: ingress("x.example.org"),
			want: []string{`repo/workplace.yaml: Workplace "demo": host "x.example.org" path "/" is served twice`,
				`component "chat", no host key (set by values), Ingress.networking.k8s.io/web`,
				`component "files", no host key (set by values), Ingress.networking.k8s.io/web`},
		},
		"hosts of their own": {rendered: ingress("x.example.org"), stored: ingress("y.example.org")},
		"node port claimed twice": {
			rendered: service(30001), stored: service(30001),
			want: []string{`repo/workplace.yaml: Workplace "demo": node port 30001/TCP is claimed twice`,
				`component "chat", Service/web`, `component "files", Service/web`},
		},
		"node ports of their own": {rendered: service(30001), stored: service(30002)},
		"stored object outside the namespace": {
			rendered: service(30001), stored: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: kube-system}\n",
			want: []string{`repo/workplace.yaml: Workplace "demo": component "chat": ConfigMap/kube-system/x: outside the workplace's namespace "demo"`},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := twoReleases(map[string]string{"web.yaml": c.rendered}, map[string]string{"fail.yaml": unrenderable})
			_, err := PlanReusing(context.Background(), p, map[string]Stored{"demo-chat": {Manifest: c.stored}}, Options{})
			if len(c.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, c.want...)
		})
	}
}

// TestPlanReusingRefusesAStoredManifestOutsideThePlan: a stored manifest of a
// release the plan does not have is a mistake of the caller, not something to skip.
func TestPlanReusingRefusesAStoredManifestOutsideThePlan(t *testing.T) {
	cm := map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"}
	p := twoReleases(cm, cm)
	_, err := PlanReusing(context.Background(), p, map[string]Stored{"demo-video": {Manifest: "{}"}}, Options{})
	wantErr(t, err, `repo/workplace.yaml: Workplace "demo": stored manifest of release demo-video, which is not in the plan`)
}

func releases(ms []*Manifest) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Release)
	}
	return out
}
