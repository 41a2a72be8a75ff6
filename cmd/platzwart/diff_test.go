package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/platzwart/platzwart/reconciler/upgrade"
)

// Values the tests put into a Secret and into an env variable named like a
// credential: they must never be printed.
const (
	apiKey1 = "memo-api-key-first-3f9c"
	apiKey2 = "memo-api-key-second-7d1e"
	token1  = "memo-token-first-a81b"
	token2  = "memo-token-second-c42f"
)

// diffWorkplace is a workplace without chat: identity, postgres, redis, files, video
// and the test component memo (testdata/memo) as office.
func diffWorkplace(ns, video, valkeyMemory, apiKey, token string) string {
	return `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: ` + ns + `}
spec:
  domain: 192.168.49.41.sslip.io
  profile: minikube
  components: {chat: none, mail: none, video: ` + video + `, office: memo}
  values:
    valkey: {config: {maxmemory: "` + valkeyMemory + `"}}
    memo: {apiKey: "` + apiKey + `", token: "` + token + `"}
    bigbluebutton:
      servers:
        - url: https://bbb.example.org/bigbluebutton/
          secret: {name: bbb-secret, key: secret}
`
}

// gitRepo is a Git repository in a temporary directory, written with go-git.
type gitRepo struct {
	t    *testing.T
	dir  string
	repo *gogit.Repository
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	dir := t.TempDir()
	repo, err := gogit.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return &gitRepo{t: t, dir: dir, repo: repo}
}

// write writes files (path → content) into the work tree.
func (g *gitRepo) write(files map[string]string) {
	g.t.Helper()
	for name, data := range files {
		p := filepath.Join(g.dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			g.t.Fatal(err)
		}
	}
}

// commit commits every file of the work tree and returns the commit hash.
func (g *gitRepo) commit(msg string) string {
	g.t.Helper()
	wt, err := g.repo.Worktree()
	if err != nil {
		g.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&gogit.AddOptions{All: true}); err != nil {
		g.t.Fatal(err)
	}
	h, err := wt.Commit(msg, &gogit.CommitOptions{Author: &object.Signature{Name: "test", Email: "test@example.org", When: time.Now()}})
	if err != nil {
		g.t.Fatal(err)
	}
	return h.String()
}

// memoCatalog returns the files of testdata/memo, by path.
func memoCatalog(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	root := filepath.Join("testdata", "memo")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// swapRepo is a repository with two commits: the first a workplace with Jitsi, the
// second swaps Jitsi for BigBlueButton and changes values of valkey and memo (the
// Secret's value and the credential-like env value).
func swapRepo(t *testing.T) (g *gitRepo, first, second string) {
	t.Helper()
	g = newGitRepo(t)
	g.write(memoCatalog(t))
	g.write(map[string]string{"workplaces/demo.yaml": diffWorkplace("demo", "jitsi", "96mb", apiKey1, token1)})
	first = g.commit("a workplace with jitsi")
	g.write(map[string]string{"workplaces/demo.yaml": diffWorkplace("demo", "bigbluebutton", "128mb", apiKey2, token2)})
	second = g.commit("jitsi → bigbluebutton, valkey and memo values")
	return g, first, second
}

// headers returns the release header lines of text output, by release.
func headers(out string) map[string]string {
	m := map[string]string{}
	re := regexp.MustCompile(`(?m)^=== demo/(\S+) \((\S+)\): (\S+?)(?:[: ].*)?$`)
	for _, s := range re.FindAllStringSubmatch(out, -1) {
		m[s[1]] = s[3]
	}
	return m
}

func assertNoSecretValues(t *testing.T, what, out string) {
	t.Helper()
	for _, v := range []string{apiKey1, apiKey2, token1, token2} {
		if strings.Contains(out, v) {
			t.Errorf("%s prints the secret value %q", what, v)
		}
	}
}

// TestDiffBetweenRevisions diffs two commits of a real Git repository, offline: the
// swapped-out release is uninstalled, the new one installed, releases with changed
// values upgraded, the rest unchanged; Secret data and a credential-like env value are
// masked and show as changed, never as values.
func TestDiffBetweenRevisions(t *testing.T) {
	t.Parallel()
	g, first, second := swapRepo(t)
	start := time.Now()
	out, errOut, err := runCLI(t, "diff", "--from", first, "--to", second, g.dir)
	t.Logf("diff --from --to took %s", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("diff: %v\n%s", err, errOut)
	}
	t.Logf("platzwart diff:\n%s", out)
	// BigBlueButton (Greenlight) has its own database, OIDC client and Valkey access, so
	// the swap upgrades postgresql, keycloak and valkey too; memo's values changed;
	// Nextcloud does not use the video component.
	want := map[string]string{
		"demo-jitsi":         "uninstall",
		"demo-bigbluebutton": "install",
		"demo-postgresql":    "upgrade",
		"demo-keycloak":      "upgrade",
		"demo-valkey":        "upgrade",
		"demo-memo":          "upgrade",
		"demo-nextcloud":     "unchanged",
		// The portal's page moves the video tile to Greenlight's host.
		"demo-portal": "upgrade",
	}
	got := headers(out)
	for rel, action := range want {
		if got[rel] != action {
			t.Errorf("release %s: header says %q, want %q", rel, got[rel], action)
		}
	}
	if len(got) != len(want) {
		t.Errorf("headers for %v, want exactly %v", got, want)
	}
	for _, s := range []string{
		"=== demo/demo-nextcloud (nextcloud): unchanged\n=== ", // collapsed: one line, nothing below
		"-    maxmemory 96mb\n+    maxmemory 128mb\n",
		"-          value: keycloak\n+          value: greenlight\n", // postgresql's provisioning hook
		"+          - demo-bigbluebutton\n",
		"~ Secret demo/demo-memo\n",
		"-  api-key: '***'\n+  api-key: '*** (changed)'\n",
		"-          value: '***'\n+          value: '*** (changed)'\n",
		"- Deployment demo/demo-jitsi-web\n",
		"+ Deployment demo/demo-bigbluebutton",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	assertNoSecretValues(t, "diff", out+errOut)

	// --full prints added and removed objects whole, still masked.
	full, _, err := runCLI(t, "diff", "--full", "--from", first, "--to", second, g.dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(full, "+kind: Deployment") || !strings.Contains(full, "-kind: Deployment") || len(full) <= len(out) {
		t.Errorf("--full does not print the content of added and removed objects")
	}
	assertNoSecretValues(t, "diff --full", full)

	// JSON: typed releases with objects, masked the same way.
	js, _, err := runCLI(t, "diff", "-o", "json", "--from", first, "--to", second, g.dir)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecretValues(t, "diff -o json", js)
	if strings.Contains(js, `"objects": null`) {
		t.Error(`JSON has "objects": null; want [] for releases without changed objects`)
	}
	var rep struct {
		From, To string
		Releases []struct {
			Workplace, Namespace, Name, Component, Action, Reason string
			Objects                                               []struct {
				APIVersion, Kind, Namespace, Name, Action, Diff string
				Hook                                            bool
			}
		}
	}
	dec := json.NewDecoder(strings.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, js)
	}
	if !strings.HasPrefix(rep.From, first[:12]) || !strings.HasPrefix(rep.To, second[:12]) {
		t.Errorf("from %q, to %q: want the two commits", rep.From, rep.To)
	}
	for _, r := range rep.Releases {
		if r.Namespace != "demo" || r.Workplace != "demo/demo" || want[r.Name] != r.Action {
			t.Errorf("release %+v: want namespace demo, workplace demo/demo, action %q", r, want[r.Name])
		}
		switch r.Name {
		case "demo-jitsi":
			if len(r.Objects) == 0 {
				t.Error("the uninstall lists no objects")
			}
			for _, o := range r.Objects {
				if o.Action != "remove" || o.Kind == "" || o.Name == "" || !strings.HasPrefix(o.Diff, "--- ") {
					t.Errorf("uninstalled object %+v: want action remove with a diff", o)
				}
			}
		case "demo-memo":
			var secret bool
			for _, o := range r.Objects {
				if o.Kind == "Secret" && o.Action == "change" && strings.Contains(o.Diff, "*** (changed)") {
					secret = true
				}
			}
			if !secret {
				t.Errorf("memo's objects %+v: want the Secret changed, masked", r.Objects)
			}
		case "demo-nextcloud":
			if len(r.Objects) != 0 {
				t.Errorf("unchanged release %s lists objects %+v", r.Name, r.Objects)
			}
		}
	}
}

// TestDiffExitCode runs the real process: --exit-code exits 1 when something changes
// and 0 when nothing does; errors exit 2 with or without it.
func TestDiffExitCode(t *testing.T) {
	t.Parallel()
	g, first, second := swapRepo(t)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"diff", "--exit-code", "--from", first, "--to", second, g.dir}, 1},
		{[]string{"diff", "--exit-code", "--from", second, "--to", second, g.dir}, 0},
		{[]string{"diff", "--exit-code", "--from", "HEAD~1", g.dir}, 1}, // --to defaults to the files in dir
		{[]string{"diff", "--from", first, "--to", second, g.dir}, 0},   // without --exit-code
		{[]string{"diff", "--exit-code", "--from", "no-such-revision", g.dir}, 2},
		{[]string{"diff", "--from", "no-such-revision", g.dir}, 2},
		{[]string{"diff", "--exit-code", "--no-such-flag"}, 2},
		{[]string{"diff", "--to", second, g.dir}, 2},
	} {
		stdout, stderr, code, took := runCheckProcess(t, c.args...)
		t.Logf("platzwart %s: exit %d in %s", strings.Join(c.args[1:], " "), code, took.Round(time.Millisecond))
		if code != c.code {
			t.Errorf("platzwart %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(c.args, " "), code, c.code, stdout, stderr)
		}
		if c.code == 1 && stderr != "" {
			t.Errorf("changes are not an error, but stderr says %q", stderr)
		}
		if c.code == 2 && !strings.HasPrefix(stderr, "Error: ") {
			t.Errorf("exit 2 without an error message: %q", stderr)
		}
		assertNoSecretValues(t, "diff", stdout+stderr)
	}
}

// TestDiffColor: --color always colours, never and auto (not a terminal) do not.
func TestDiffColor(t *testing.T) {
	t.Parallel()
	g, first, second := swapRepo(t)
	for mode, want := range map[string]bool{"always": true, "never": false, "auto": false} {
		out, _, err := runCLI(t, "diff", "--color", mode, "--from", first, "--to", second, g.dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(out, "\x1b["); got != want {
			t.Errorf("--color %s: coloured %v, want %v", mode, got, want)
		}
	}
	if _, _, err := runCLI(t, "diff", "--color", "sometimes", "--from", first, g.dir); err == nil || exitCode(err) != exitFailed {
		t.Errorf("--color sometimes: %v, want an error with exit status 2", err)
	}
}

// versionWorkplace is identity, postgres, redis and files (Nextcloud) in namespace
// ns, Nextcloud pinned to pin unless pin is "", PostgreSQL with maxConnections.
func versionWorkplace(ns, pin, maxConnections string) string {
	versions := ""
	if pin != "" {
		versions = "  versions: {nextcloud: " + pin + "}\n"
	}
	return `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: ` + ns + `}
spec:
  domain: 192.168.49.43.sslip.io
  profile: minikube
  components: {chat: none, mail: none, video: none, office: none}
` + versions + `  values:
    postgresql: {config: {max_connections: "` + maxConnections + `"}}
`
}

// diffJSON is the JSON of `platzwart diff -o json`, decoded strictly.
type diffJSON struct {
	From, To string
	Releases []struct {
		Workplace, Namespace, Name, Component, Action, Reason string
		Versions                                              []string
		Objects                                               []struct {
			APIVersion, Kind, Namespace, Name, Action, Diff string
			Hook                                            bool
		}
	}
}

func decodeDiffJSON(t *testing.T, js string) diffJSON {
	t.Helper()
	var rep diffJSON
	dec := json.NewDecoder(strings.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, js)
	}
	return rep
}

// TestDiffVersionPathBetweenRevisions diffs three commits of a real Git repository,
// offline: Nextcloud pinned to 33.0.7, then the pin removed (the newest, 34.0.4) and
// a PostgreSQL value changed, then the pin back. The first change shows Nextcloud's
// upgrade with its version path in the header and in JSON, and no versions for
// PostgreSQL (upgraded, its version unchanged) or the unchanged releases; the pin
// going back down is refused as a downgrade, naming the release, the file and the
// field, with exit status 2.
func TestDiffVersionPathBetweenRevisions(t *testing.T) {
	t.Parallel()
	g := newGitRepo(t)
	g.write(map[string]string{"workplaces/demo.yaml": versionWorkplace("demo", "33.0.7", "100")})
	pinned := g.commit("nextcloud pinned to 33.0.7")
	g.write(map[string]string{"workplaces/demo.yaml": versionWorkplace("demo", "", "120")})
	newest := g.commit("nextcloud follows the newest; postgresql max_connections")
	g.write(map[string]string{"workplaces/demo.yaml": versionWorkplace("demo", "33.0.7", "120")})
	down := g.commit("nextcloud pinned back to 33.0.7")

	start := time.Now()
	out, errOut, err := runCLI(t, "diff", "--from", pinned, "--to", newest, g.dir)
	t.Logf("diff --from --to took %s", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("diff: %v\n%s", err, errOut)
	}
	t.Logf("platzwart diff:\n%s", out)
	want := map[string]string{
		"demo-keycloak":   "unchanged",
		"demo-postgresql": "upgrade",
		"demo-valkey":     "unchanged",
		"demo-nextcloud":  "upgrade",
		"demo-portal":     "unchanged",
	}
	if got := headers(out); !maps.Equal(got, want) {
		t.Errorf("headers %v, want %v", got, want)
	}
	for _, s := range []string{
		"=== demo/demo-nextcloud (nextcloud): upgrade (versions 33.0.7 → 34.0.4): ",
		"=== demo/demo-postgresql (postgresql): upgrade: ",
		"33.0.7-apache\n", "34.0.4-apache\n", // the image the path ends with
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	if n := strings.Count(out, "(versions "); n != 1 {
		t.Errorf("%d headers show versions, want only Nextcloud's", n)
	}

	js, _, err := runCLI(t, "diff", "-o", "json", "--from", pinned, "--to", newest, g.dir)
	if err != nil {
		t.Fatal(err)
	}
	rep := decodeDiffJSON(t, js)
	if len(rep.Releases) != len(want) {
		t.Errorf("JSON has %d releases, want %d", len(rep.Releases), len(want))
	}
	for _, r := range rep.Releases {
		wantVersions := []string(nil)
		if r.Name == "demo-nextcloud" {
			wantVersions = []string{"33.0.7", "34.0.4"}
		}
		if r.Action != want[r.Name] || !slices.Equal(r.Versions, wantVersions) {
			t.Errorf("JSON release %s: action %s, versions %q; want %s, %q", r.Name, r.Action, r.Versions, want[r.Name], wantVersions)
		}
	}
	if n := strings.Count(js, `"versions"`); n != 1 {
		t.Errorf(`JSON has %d "versions" fields, want only Nextcloud's`, n)
	}

	// The pin going back down: refused, as text and as JSON, naming what and where.
	for _, format := range []string{"text", "json"} {
		out, errOut, err := runCLI(t, "diff", "-o", format, "--from", newest, "--to", down, g.dir)
		var refused *upgrade.DowngradeError
		if !errors.As(err, &refused) || exitCode(err) != exitFailed {
			t.Fatalf("-o %s: pinning 33.0.7 after 34.0.4: %v (exit %d), want a *upgrade.DowngradeError with exit status 2\n%s%s",
				format, err, exitCode(err), out, errOut)
		}
		msg := err.Error()
		t.Logf("-o %s: %s", format, msg)
		for _, s := range []string{"demo-nextcloud", "workplaces/demo.yaml", `Workplace "demo": spec.versions.nextcloud`, "downgrade from 34.0.4 to 33.0.7"} {
			if !strings.Contains(msg, s) {
				t.Errorf("-o %s: the refusal %q does not say %q", format, msg, s)
			}
		}
		if out != "" {
			t.Errorf("-o %s: a refused diff prints a report:\n%s", format, out)
		}
	}
	stdout, stderr, code, _ := runCheckProcess(t, "diff", "--from", newest, "--to", down, g.dir)
	if code != exitFailed || !strings.HasPrefix(stderr, "Error: ") || !strings.Contains(stderr, "spec.versions.nextcloud") {
		t.Errorf("platzwart diff of a downgrade: exit %d, stderr %q, want exit 2 and the error naming the pin\n%s", code, stderr, stdout)
	}
}
