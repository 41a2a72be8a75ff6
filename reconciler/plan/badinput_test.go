package plan_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
)

// workplace returns a Workplace document like the example's with spec lines replaced.
func workplace(spec string) string {
	return `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata:
  name: demo
  namespace: demo
spec:
  domain: 192.168.49.2.sslip.io
  profile: minikube
` + spec
}

// componentOverride is a built-in component with one text replaced, as a repository's
// own component.
func componentOverride(t *testing.T, name, from, to string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../components", name, "component.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if !strings.Contains(s, from) {
		t.Fatalf("components/%s/component.yaml has no %q to replace", name, from)
	}
	return strings.Replace(s, from, to, 1)
}

func TestBadInput(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string // every substring must be in the error
	}{
		{
			name:  "unknown component",
			files: map[string]string{"workplace.yaml": workplace("  components:\n    video: jitsy\n")},
			want:  []string{"repo/workplace.yaml", `Workplace "demo"`, "spec.components.video", `unknown component "jitsy"`, "bigbluebutton", "jitsi"},
		},
		{
			name:  "unknown capability",
			files: map[string]string{"workplace.yaml": workplace("  components:\n    printing: cups\n")},
			want:  []string{"repo/workplace.yaml", `Workplace "demo"`, "spec.components.printing", `unknown capability "printing"`},
		},
		{
			name:  "component in the wrong capability",
			files: map[string]string{"workplace.yaml": workplace("  components:\n    video: nextcloud\n")},
			want:  []string{"spec.components.video", `component "nextcloud" fills "files", not "video"`},
		},
		{
			name:  "consumed capability switched off",
			files: map[string]string{"workplace.yaml": workplace("  components:\n    postgres: none\n")},
			want:  []string{"spec.components.postgres", `consumes "postgres", which is switched off`},
		},
		{
			name: "backup claim size that is no quantity",
			files: map[string]string{
				"workplace.yaml":     strings.Replace(workplace(""), "profile: minikube", "profile: tiny", 1),
				"profiles/tiny.yaml": "apiVersion: platzwart.io/v1alpha1\nkind: Profile\nmetadata:\n  name: tiny\nspec:\n  extends: minikube\n  backups:\n    size: lots\n",
			},
			want: []string{"repo/profiles/tiny.yaml", `Profile "tiny"`, "spec.backups.size", `"lots" is not a positive quantity`},
		},
		{
			name:  "malformed YAML",
			files: map[string]string{"workplace.yaml": workplace("  components:\n    video: [jitsi\n")},
			want:  []string{"repo/workplace.yaml", "malformed YAML", "line"},
		},
		{
			name:  "unknown field",
			files: map[string]string{"workplace.yaml": workplace("  componets:\n    video: jitsi\n")},
			want:  []string{"repo/workplace.yaml", `Workplace "demo"`, "spec.componets", "unknown field"},
		},
		{
			name:  "invalid domain",
			files: map[string]string{"workplace.yaml": strings.Replace(workplace(""), "192.168.49.2.sslip.io", "Not_A_Domain", 1)},
			want:  []string{"repo/workplace.yaml", `Workplace "demo"`, "spec.domain", "invalid domain"},
		},
		{
			name:  "unknown profile",
			files: map[string]string{"workplace.yaml": strings.Replace(workplace(""), "profile: minikube", "profile: laptop", 1)},
			want:  []string{"spec.profile", `unknown profile "laptop"`, "minikube", "standard"},
		},
		{
			name:  "invalid data policy",
			files: map[string]string{"workplace.yaml": workplace("  dataPolicy: Shred\n")},
			want:  []string{"spec.dataPolicy", `unknown policy "Shred"`},
		},
		{
			name:  "values for an unknown component",
			files: map[string]string{"workplace.yaml": workplace("  values:\n    jitsy: {replicas: 2}\n")},
			want:  []string{"spec.values.jitsy", `unknown component "jitsy"`},
		},
		{
			name: "dependency cycle",
			files: map[string]string{
				"workplace.yaml":                     workplace(""),
				"components/keycloak/component.yaml": componentOverride(t, "keycloak", "consumes: [postgres]", "consumes: [postgres, chat]"),
			},
			want: []string{"spec.components", "dependency cycle", "keycloak", "synapse"},
		},
		{
			name: "duplicate hostnames",
			files: map[string]string{
				"workplace.yaml":                      workplace(""),
				"components/collabora/component.yaml": componentOverride(t, "collabora", "subdomain: office", "subdomain: files"),
			},
			want: []string{"repo/workplace.yaml", "duplicate hostname", "files.192.168.49.2.sslip.io", "collabora", "nextcloud"},
		},
		{
			name: "chart path escaping the repository",
			files: map[string]string{
				"workplace.yaml":                   workplace(""),
				"components/valkey/component.yaml": componentOverride(t, "valkey", "chart: charts/valkey", "chart: ../../etc/valkey"),
			},
			want: []string{"repo/components/valkey/component.yaml", `Component "valkey"`, "spec.chart", "inside the repository"},
		},
		{
			name: "template error in a mapping",
			files: map[string]string{
				"workplace.yaml":                   workplace(""),
				"components/valkey/component.yaml": componentOverride(t, "valkey", "  values: |\n", "  values: |\n    broken: {{ .Nope.deeper.still }}\n"),
			},
			want: []string{"repo/workplace.yaml", "spec.components.redis", `component "valkey"`, "spec.values"},
		},
		{
			name: "unknown field in a component",
			files: map[string]string{
				"workplace.yaml":                   workplace(""),
				"components/valkey/component.yaml": componentOverride(t, "valkey", "spec:\n", "spec:\n  flavour: vanilla\n"),
			},
			want: []string{"repo/components/valkey/component.yaml", `Component "valkey"`, "spec.flavour", "unknown field"},
		},
		{
			name: "patch that matches nothing",
			files: map[string]string{"workplace.yaml": workplace(`  patches:
    keycloak:
      - target: {kind: Deployment, name: no-such-deployment}
        patch: |
          - op: add
            path: /metadata/labels/x
            value: y
`)},
			want: []string{"repo/workplace.yaml", `Workplace "demo"`, "spec.patches.keycloak[0].target", "matches no resource"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plans, _, err := buildAll(t, repoFS(tc.files))
			if err == nil {
				t.Fatalf("no error; plans: %d", len(plans))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestSymlinkedChartOutsideRepository checks that a chart reached through a symlink
// pointing out of the repository is refused.
func TestSymlinkedChartOutsideRepository(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "Chart.yaml"), []byte("apiVersion: v2\nname: evil\nversion: 0.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	for p, content := range map[string]string{
		"workplace.yaml":                   workplace(""),
		"components/valkey/component.yaml": componentOverride(t, "valkey", "chart: charts/valkey", "chart: charts/evil"),
	} {
		if err := os.MkdirAll(filepath.Join(repo, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(repo, "charts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(repo, "charts", "evil")); err != nil {
		t.Fatal(err)
	}
	_, err := load.Dir(repo, platzwart.Builtin(), "")
	if err == nil {
		t.Fatal("a chart symlinked out of the repository was accepted")
	}
	for _, w := range []string{"components/valkey/component.yaml", "spec.chart", "charts/evil"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}
