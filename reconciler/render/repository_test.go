package render

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
)

// workplaceDoc is a small workplace (identity, files and what they need) in namespace ns.
func workplaceDoc(name, ns, domain, extra string) string {
	return `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: ` + name + `, namespace: ` + ns + `}
spec:
  domain: ` + domain + `
  profile: minikube
  components: {chat: none, video: none, office: none}
` + extra
}

// renderFiles loads a repository of files with the built-in catalog and renders it.
func renderFiles(t *testing.T, files map[string]string, opts Options) ([]*Workplace, error) {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := load.Dir(dir, platzwart.Builtin(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range repo.Workplaces {
		w.File = strings.TrimPrefix(w.File, dir+"/")
	}
	return Repository(context.Background(), repo, opts)
}

func TestRepositoryRendersTheSmallWorkplace(t *testing.T) {
	ws, err := renderFiles(t, map[string]string{"a.yaml": workplaceDoc("a", "team-a", "a.example.org", "")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || len(ws[0].Manifests) == 0 {
		t.Fatalf("got %d workplaces", len(ws))
	}
}

func TestHostsUniqueInAWorkplace(t *testing.T) {
	// Values move Nextcloud onto Keycloak's host.
	doc := workplaceDoc("a", "team-a", "a.example.org", "  values:\n    nextcloud: {host: id.a.example.org}\n")
	_, err := renderFiles(t, map[string]string{"a.yaml": doc}, Options{})
	wantErr(t, err, `a.yaml: Workplace "a": host "id.a.example.org" path "/" is served twice`,
		`workplace team-a/a (a.yaml) component "keycloak", host key `,
		`component "nextcloud", no host key (set by values), Ingress.networking.k8s.io/`)
}

func TestHostsUniqueAcrossWorkplaces(t *testing.T) {
	_, err := renderFiles(t, map[string]string{
		"a.yaml":     workplaceDoc("a", "team-a", "shared.example.org", ""),
		"sub/b.yaml": workplaceDoc("b", "team-b", "shared.example.org", ""),
	}, Options{})
	wantErr(t, err, `sub/b.yaml: Workplace "b": host "shared.example.org" is claimed by two workplaces: workplace team-a/a (a.yaml)`,
		`and workplace team-b/b (sub/b.yaml)`)
	// Two workplaces in one namespace, with their own domains, fit.
	if _, err := renderFiles(t, map[string]string{
		"a.yaml": workplaceDoc("a", "shared", "a.example.org", ""),
		"b.yaml": workplaceDoc("b", "shared", "b.example.org", ""),
	}, Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestRenderedHostsAreNames(t *testing.T) {
	doc := workplaceDoc("a", "team-a", "a.example.org", "  values:\n    nextcloud: {host: 10.0.0.5}\n")
	_, err := renderFiles(t, map[string]string{"a.yaml": doc}, Options{})
	wantErr(t, err, `a.yaml: Workplace "a": component "nextcloud": Ingress.networking.k8s.io/`, `host "10.0.0.5" is an IP address`)
}

func TestPatchCannotMoveAnObjectOutOfTheWorkplace(t *testing.T) {
	doc := workplaceDoc("a", "team-a", "a.example.org", `  patches:
    nextcloud:
    - target: {kind: Service}
      patch: '[{"op": "add", "path": "/metadata/namespace", "value": "kube-system"}]'
`)
	_, err := renderFiles(t, map[string]string{"a.yaml": doc}, Options{})
	wantErr(t, err, `a.yaml: Workplace "a": spec.patches.nextcloud[0]: a patch may change an object's content, not its identity`, "Service/kube-system/")
}

func TestNodePortsUniqueAcrossWorkplaces(t *testing.T) {
	jitsi := func(name string, port int) string {
		values := fmt.Sprintf("  values:\n    jitsi: {jvb: {port: %d}}\n", port)
		return strings.Replace(workplaceDoc(name, "team-"+name, name+".192.168.49.2.sslip.io", values), "video: none", "video: jitsi", 1)
	}
	_, err := renderFiles(t, map[string]string{"a.yaml": jitsi("a", 31000), "b.yaml": jitsi("b", 31000)}, Options{})
	wantErr(t, err, `b.yaml: Workplace "b": node port 31000/UDP is claimed twice (node ports are cluster-wide): by workplace team-a/a (a.yaml) component "jitsi", Service/a-jitsi-jvb`,
		`and by workplace team-b/b (b.yaml) component "jitsi", Service/b-jitsi-jvb`)
	if _, err := renderFiles(t, map[string]string{"a.yaml": jitsi("a", 31000), "b.yaml": jitsi("b", 31001)}, Options{}); err != nil {
		t.Fatal(err)
	}
}
