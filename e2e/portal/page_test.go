package portal_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
)

// renderPortal plans and renders a repository (path → content) and returns the
// portal release's manifest, or the error.
func renderPortal(t *testing.T, files map[string]string) (string, error) {
	t.Helper()
	fsys := fstest.MapFS{}
	for p, c := range files {
		fsys[p] = &fstest.MapFile{Data: []byte(c), Mode: 0o644}
	}
	repo, err := load.FS(fsys, "repo", platzwart.Builtin(), "")
	if err != nil {
		return "", err
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		return "", err
	}
	ms, err := render.Plan(t.Context(), p)
	if err != nil {
		return "", err
	}
	for _, m := range ms {
		if m.Component == "portal" {
			return m.Manifest, nil
		}
	}
	t.Fatal("no portal release")
	return "", nil
}

const pageWorkplace = `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: demo}
spec:
  domain: 192.168.49.2.sslip.io
  profile: minikube
`

// TestPageEscapesTileText: a tile's text from a repository's component.yaml is
// HTML-escaped on the page, so a catalog entry cannot inject markup.
func TestPageEscapesTileText(t *testing.T) {
	comp := `apiVersion: platzwart.io/v1alpha1
kind: Component
metadata: {name: wiki}
spec:
  capability: files
  licence: MIT
  url: https://example.org
  hosts: [{name: wiki, subdomain: wiki}]
  exports: |
    url: {{ .URLs.wiki }}
  tile:
    name: "<script>alert(1)</script>Wiki"
    description: 'Notes & "docs"'
    host: wiki
    path: /start?a=1&b=2
`
	manifest, err := renderPortal(t, map[string]string{
		"workplace.yaml":                 strings.Replace(pageWorkplace, "  profile: minikube\n", "  profile: minikube\n  components: {files: wiki, office: none}\n", 1),
		"components/wiki/component.yaml": comp,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;Wiki", "Notes &amp; &#34;docs&#34;", `href="https://wiki.192.168.49.2.sslip.io/start?a=1&amp;b=2"`} {
		if !strings.Contains(manifest, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(manifest, "<script>") {
		t.Error("the page carries a tile's markup unescaped")
	}
}

// TestPageRefusesUnsafeTiles: values that would put a script link or a remote
// image on the page fail the render.
func TestPageRefusesUnsafeTiles(t *testing.T) {
	for name, app := range map[string]string{
		"javascript link": `{name: x, url: "javascript:alert(1)"}`,
		"remote icon":     `{name: x, url: "https://x.example.org/", icon: "https://tracker.example.org/x.svg"}`,
	} {
		t.Run(name, func(t *testing.T) {
			doc := pageWorkplace + "  values:\n    portal: {apps: [" + app + "]}\n"
			_, err := renderPortal(t, map[string]string{"workplace.yaml": doc})
			if err == nil {
				t.Fatal("rendered")
			}
			t.Log(err)
		})
	}
}
