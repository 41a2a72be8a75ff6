package reconciler_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/release"
)

// failsToRender is what a chart made unrenderable says when it is rendered.
const failsToRender = "rendered although its release is unchanged"

// unrenderable returns rel with a chart that fails whenever it is rendered and the
// same digest: Decide still finds the release unchanged, so only a render notices.
func unrenderable(rel *plan.Release) *plan.Release {
	ch := *rel.Chart.Chart
	ch.Templates = append(slices.Clone(ch.Templates), &chart.File{Name: "templates/zz-fail.yaml", Data: []byte(`{{ fail "` + failsToRender + `" }}`)})
	c := *rel.Chart
	c.Chart = &ch
	r := *rel
	r.Chart = &c
	return &r
}

// TestPreflightRendersOnlyWhatChanges reconciles a workplace of four releases
// (postgresql, valkey, keycloak, portal) in which valkey serves a fixed node port.
// Then, with one release changing each time:
//   - portal serving keycloak's host, and postgresql claiming valkey's node port, are
//     refused by the preflight naming both components, with nothing applied: the
//     guards see the unchanged release, taken from Helm's storage;
//   - an upgrade of valkey succeeds while every other release's chart fails to render:
//     the preflight renders only valkey. Check (what `platzwart rotate` runs first)
//     renders every release and fails on them.
func TestPreflightRendersOnlyWhatChanges(t *testing.T) {
	e := newEnv(t)
	const domain = "192.168.49.2.sslip.io"
	nodePort := fmt.Sprintf(`[{"op": "replace", "path": "/spec/type", "value": "NodePort"}, {"op": "add", "path": "/spec/ports/0/nodePort", "value": %d}]`, e.jvbPort)
	workplace := func(round, patches string) *plan.Plan {
		return e.plan(e.workplaceDir(map[string]string{
			"    video: jitsi ":      "    video: none #",
			"    office: collabora ": "    office: none\n    chat: none\n    files: none\n    mail: none #",
			"    bigbluebutton:\n":   fmt.Sprintf("    valkey: {podAnnotations: {round: %q}}\n    bigbluebutton:\n", round),
			"  dataPolicy: Retain":   "  patches:\n    valkey:\n    - target: {kind: Service, name: demo-valkey}\n      patch: '" + nodePort + "'\n" + patches + "  dataPolicy: Retain",
		}, nil))
	}
	e.reconcile(workplace("1", ""))
	installed := revisions(t, e, "demo")

	refused := map[string]struct {
		patches string
		want    []string
	}{
		"portal serves keycloak's host": {
			patches: `    portal:
    - target: {kind: Ingress}
      patch: '[{"op": "replace", "path": "/spec/rules/0/host", "value": "id.` + domain + `"}]'
`,
			want: []string{`host "id.` + domain + `" path "/" is served twice`, `component "keycloak", host key `, `component "portal", no host key (set by values), Ingress.networking.k8s.io/`},
		},
		"postgresql claims valkey's node port": {
			patches: "    postgresql:\n    - target: {kind: Service, name: demo-postgresql}\n      patch: '" + nodePort + "'\n",
			want:    []string{fmt.Sprintf("node port %d/TCP is claimed twice", e.jvbPort), `component "postgresql", Service/demo-postgresql`, `component "valkey", Service/demo-valkey`},
		},
	}
	for name, c := range refused {
		t.Run(name, func(t *testing.T) {
			p := workplace("1", c.patches)
			// Decide on the plan as Reconcile sees it (digests with the Secrets' versions).
			withVersions, err := reconciler.WithSecretVersions(t.Context(), e.cluster, p)
			if err != nil {
				t.Fatal(err)
			}
			steps, err := e.rec.Engine.Decide(t.Context(), withVersions)
			if err != nil {
				t.Fatal(err)
			}
			var changing []string
			for _, s := range steps {
				if s.Action != release.ActionUnchanged {
					changing = append(changing, s.Release+" "+string(s.Action))
				}
			}
			if len(changing) != 1 {
				t.Fatalf("steps changing %v; want one release", changing)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			_, err = e.rec.Reconcile(ctx, p)
			if err == nil {
				t.Fatalf("%s: reconciled", changing[0])
			}
			for _, want := range append([]string{"nothing was applied"}, c.want...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if after := revisions(t, e, "demo"); fmt.Sprint(after) != fmt.Sprint(installed) {
				t.Errorf("revisions %v after the refusal, want %v", after, installed)
			}
		})
	}

	t.Run("only the changing release is rendered", func(t *testing.T) {
		p := workplace("2", "")
		for i, rel := range p.Releases {
			if rel.Component != "valkey" {
				p.Releases[i] = unrenderable(rel)
			}
		}
		// Check renders every release: the charts above do fail when rendered.
		err := e.rec.Check(t.Context(), p)
		if err == nil || !strings.Contains(err.Error(), failsToRender) {
			t.Fatalf("Check with unrenderable charts: %v; want %q", err, failsToRender)
		}
		for _, rel := range p.Releases {
			if rel.Component != "valkey" && !strings.Contains(err.Error(), fmt.Sprintf("component %q", rel.Component)) {
				t.Errorf("Check did not render component %s: %v", rel.Component, err)
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		rep, err := e.rec.Reconcile(ctx, p)
		if err != nil {
			t.Fatalf("upgrade of valkey: the preflight rendered an unchanged release: %v", err)
		}
		for _, o := range rep.Result.Outcomes {
			want := release.ActionUnchanged
			if o.Component == "valkey" {
				want = release.ActionUpgrade
			}
			if o.Action != want || o.Err != "" {
				t.Errorf("release %s: %s %s; want %s", o.Release, o.Action, o.Err, want)
			}
		}
		after := revisions(t, e, "demo")
		for component, rev := range installed {
			want := rev
			if component == "valkey" {
				want++
			}
			if after[component] != want {
				t.Errorf("%s: revision %d → %d, want %d", component, rev, after[component], want)
			}
		}
	})
}
