package plan_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/platzwart/platzwart/reconciler/plan"
)

// wikiRepo is a workplace repository that adds two kinds of app of its own, as data:
// a wiki (capability, component and chart) and a project board that consumes it,
// both selected in the example workplace. No Go code knows either name.
func wikiRepo(t *testing.T, wikiExports string) map[string]string {
	t.Helper()
	s := readExample(t)
	const portal = "    portal: portal "
	if !strings.Contains(s, portal) {
		t.Fatalf("example has no %q", portal)
	}
	s = strings.Replace(s, portal, "    portal: portal\n    wiki: wiki\n    board: board ", 1)
	return map[string]string{
		"workplace.yaml": s,
		"capabilities/wiki.yaml": `apiVersion: platzwart.io/v1alpha1
kind: Capability
metadata: {name: wiki}
spec:
  description: a wiki
  exports: [url]
`,
		"capabilities/board.yaml": `apiVersion: platzwart.io/v1alpha1
kind: Capability
metadata: {name: board}
spec:
  description: project boards
  exports: [url]
`,
		"components/wiki/component.yaml": `apiVersion: platzwart.io/v1alpha1
kind: Component
metadata: {name: wiki}
spec:
  capability: wiki
  licence: MIT
  url: https://example.org/wiki
  chart: charts/app
  consumes: [identity]
  hosts:
    - {name: wiki, subdomain: wiki}
  tile: {name: Wiki, host: wiki}
  oidcClient: {host: wiki, redirectPaths: [/callback]}
  images: [docker.io/library/nginx:1.27.0]
  exports: |
` + wikiExports + `
  values: |
    host: {{ .Hosts.wiki | quote }}
    clientID: {{ .Uses.identity.clientID | quote }}
`,
		"components/board/component.yaml": `apiVersion: platzwart.io/v1alpha1
kind: Component
metadata: {name: board}
spec:
  capability: board
  licence: MIT
  url: https://example.org/board
  chart: charts/app
  consumes: [wiki]
  hosts:
    - {name: board, subdomain: board}
  tile: {name: Board, host: board}
  images: [docker.io/library/nginx:1.27.0]
  exports: |
    url: {{ .URLs.board }}
  values: |
    host: {{ .Hosts.board | quote }}
    wikiURL: {{ .Uses.wiki.url | quote }}
`,
		"charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
		"charts/app/templates/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}}
data:
  host: {{ .Values.host | quote }}
  {{- with .Values.wikiURL }}
  wikiURL: {{ . | quote }}
  {{- end }}
`,
	}
}

// TestRepositoryAddsCapabilities: a repository declares two new kinds of app as
// data; the plan installs them in dependency order, wires the consumer to the
// provider's exports, registers the OIDC client, and the portal lists both tiles.
func TestRepositoryAddsCapabilities(t *testing.T) {
	plans, manifests, err := buildAll(t, repoFS(wikiRepo(t, "    url: {{ .URLs.wiki }}")))
	if err != nil {
		t.Fatal(err)
	}
	p := plans[0]
	const d = "192.168.49.2.sslip.io"
	order := map[string]int{}
	byName := map[string]*plan.Release{}
	for i, r := range p.Releases {
		order[r.Name] = i
		byName[r.Name] = r
	}
	wiki, board := byName["demo-wiki"], byName["demo-board"]
	if wiki == nil || board == nil {
		t.Fatalf("releases %v: want demo-wiki and demo-board", order)
	}
	if !slices.Contains(board.DependsOn, "demo-wiki") || order["demo-wiki"] > order["demo-board"] {
		t.Errorf("board depends on %v at %d, wiki at %d: want the wiki first", board.DependsOn, order["demo-board"], order["demo-wiki"])
	}
	if got := board.Values["wikiURL"]; got != "https://wiki."+d {
		t.Errorf("board's wikiURL = %v", got)
	}
	var clients []string
	for _, c := range p.Identity.Clients {
		clients = append(clients, c.Component)
	}
	if !slices.Contains(clients, "wiki") {
		t.Errorf("OIDC clients %v: want one for the wiki", clients)
	}
	if got := wiki.Values["clientID"]; got == nil || got == "" {
		t.Error("the wiki got no client id")
	}
	want := []string{"Board board https://board." + d + "/", "Wiki wiki https://wiki." + d + "/"}
	for _, w := range want {
		if !slices.Contains(tiles(p), w) {
			t.Errorf("portal tiles %v: want %q", tiles(p), w)
		}
	}
	var rendered bool
	for _, m := range manifests[0] {
		if m.Release == "demo-board" && strings.Contains(m.Manifest, `wikiURL: "https://wiki.`+d+`"`) {
			rendered = true
		}
	}
	if !rendered {
		t.Error("the board's chart did not render the wiki's URL")
	}
}

// TestRepositoryCapabilityContract: a provider must export every key its
// capability declares; a consumer of a capability switched off is refused.
func TestRepositoryCapabilityContract(t *testing.T) {
	_, _, err := buildAll(t, repoFS(wikiRepo(t, "    home: {{ .URLs.wiki }}")))
	want := `component "wiki": repo/components/wiki/component.yaml: spec.exports: the wiki contract requires url`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v\nwant it to contain %q", err, want)
	}
	files := wikiRepo(t, "    url: {{ .URLs.wiki }}")
	files["workplace.yaml"] = strings.Replace(files["workplace.yaml"], "wiki: wiki", "wiki: none", 1)
	_, _, err = buildAll(t, repoFS(files))
	want = `spec.components.wiki: component "board" (board) consumes "wiki", which is switched off`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a board without its wiki: error %v\nwant it to contain %q", err, want)
	}
}
