package render

import (
	"context"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/guard"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// testPlan is a one-release plan of the workplace demo in namespace ns.
func testPlan(ns string, rel *plan.Release) *plan.Plan {
	rel.Namespace = ns
	return &plan.Plan{Workplace: "demo", File: "repo/workplace.yaml", Namespace: ns, Releases: []*plan.Release{rel}}
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want an error containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

const clusterRole = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: files-admin}\nrules: []\n"

func TestTenancyGuard(t *testing.T) {
	const where = `repo/workplace.yaml: Workplace "demo": component "files": `
	cases := map[string]struct {
		templates map[string]string
		crds      map[string]string
		declare   []catalog.GroupKind
		opts      guard.Options
		want      []string // empty: accepted
	}{
		"object in another namespace": {
			templates: map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: kube-system}\n"},
			want:      []string{where + `ConfigMap/kube-system/x: outside the workplace's namespace "demo"`},
		},
		"hook in another namespace": {
			templates: map[string]string{"job.yaml": `{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "setup", "namespace": "other", "annotations": {"helm.sh/hook": "post-install"}}, "spec": {}}`},
			want:      []string{where + `Job.batch/other/setup: outside the workplace's namespace "demo"`},
		},
		"objects in the namespace or without one": {
			templates: map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: demo}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\n"},
		},
		"undeclared cluster-scoped kind": {
			templates: map[string]string{"rbac.yaml": clusterRole},
			opts:      guard.Options{AllowClusterScoped: true},
			want:      []string{where + "ClusterRole.rbac.authorization.k8s.io/files-admin: cluster-scoped kind ClusterRole.rbac.authorization.k8s.io, which the component does not declare"},
		},
		"declared but not allowed": {
			templates: map[string]string{"rbac.yaml": clusterRole},
			declare:   []catalog.GroupKind{{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}},
			want:      []string{"this install does not allow cluster-scoped objects"},
		},
		"declared and allowed": {
			templates: map[string]string{"rbac.yaml": clusterRole},
			declare:   []catalog.GroupKind{{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}},
			opts:      guard.Options{AllowClusterScoped: true},
		},
		"a chart's CRD": {
			crds: map[string]string{"crd.yaml": "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.org}\n"},
			want: []string{"CustomResourceDefinition.apiextensions.k8s.io/widgets.example.org: cluster-scoped kind"},
		},
		"a namespace": {
			templates: map[string]string{"ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: elsewhere}\n"},
			want:      []string{"Namespace/elsewhere: cluster-scoped kind Namespace"},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			rel := testRelease(c.templates, nil)
			for n, data := range c.crds {
				rel.Chart.Chart.Files = append(rel.Chart.Chart.Files, &chart.File{Name: "crds/" + n, Data: []byte(data)})
			}
			rel.ClusterScoped = c.declare
			_, err := PlanWith(context.Background(), testPlan("demo", rel), Options{Guard: c.opts})
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

func TestDeniedNamespaces(t *testing.T) {
	cm := map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}
	for _, c := range []struct {
		ns   string
		deny []string
		want string
	}{
		{"kube-system", nil, `namespace "kube-system" is denied for workplaces (matches "kube-*" of the deny list kube-*, default)`},
		{"kube-public", nil, `matches "kube-*"`},
		{"default", nil, `namespace "default" is denied`},
		{"platzwart-system", append(guard.DefaultDenyNamespaces(), "platzwart-system"), `namespace "platzwart-system" is denied`},
		{"demo", nil, ""},
		{"default", []string{"platzwart-system"}, ""},
	} {
		_, err := PlanWith(context.Background(), testPlan(c.ns, testRelease(cm, nil)), Options{Guard: guard.Options{DenyNamespaces: c.deny}})
		if c.want == "" {
			if err != nil {
				t.Errorf("namespace %s, deny %v: %v", c.ns, c.deny, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `repo/workplace.yaml: Workplace "demo": metadata.namespace`) {
			t.Errorf("namespace %s, deny %v: %v; want %q", c.ns, c.deny, err, c.want)
		}
	}
}
