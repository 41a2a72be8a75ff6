package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/diff"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/render"
	"github.com/platzwart/platzwart/reconciler/upgrade"
)

// clusterWorkplace is identity, postgres and the test component memo as office.
func clusterWorkplace(ns, office string, replicas int, apiKey, token string) string {
	return fmt.Sprintf(`apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: %s}
spec:
  domain: 192.168.49.42.sslip.io
  profile: minikube
  components: {chat: none, mail: none, video: none, files: none, office: %s}
  values:
    memo: {replicas: %d, apiKey: %q, token: %q}
`, ns, office, replicas, apiKey, token)
}

// actions maps release names to their actions.
func actions(rep *diff.Report) map[string]diff.Action {
	m := map[string]diff.Action{}
	for _, r := range rep.Releases {
		m[r.Name] = r.Action
	}
	return m
}

// releaseOf returns a release of the report.
func releaseOf(t *testing.T, rep *diff.Report, name string) diff.Release {
	t.Helper()
	for _, r := range rep.Releases {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no release %s in %+v", name, rep.Releases)
	return diff.Release{}
}

// objectOf returns an object of a release, or fails.
func objectOf(t *testing.T, r diff.Release, kind, name string) diff.Object {
	t.Helper()
	for _, o := range r.Objects {
		if o.Kind == kind && o.Name == name {
			return o
		}
	}
	t.Fatalf("release %s: no %s %s among %+v", r.Name, kind, name, r.Objects)
	return diff.Object{}
}

// TestDiffAgainstTheCluster applies a workplace to the local control plane, then: a
// diff right after shows every release unchanged; a Deployment scaled by hand shows
// as drift with the field; changed values show as an upgrade with the changed fields
// and the Secret's value masked as changed; deselecting a component shows its
// release's objects as removals. No diff writes anything (cluster.Writes), and no
// output holds a secret value, plain or base64.
func TestDiffAgainstTheCluster(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientset(t, c)
	ns := c.NewNamespace(t)
	dir := t.TempDir()
	writeRepo := func(workplace string) {
		t.Helper()
		files := memoCatalog(t)
		files["workplace.yaml"] = workplace
		for name, data := range files {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeRepo(clusterWorkplace(ns, "memo", 1, apiKey1, token1))
	kc := []string{"--kubeconfig", c.KubeconfigPath()}
	start := time.Now()
	if out, errOut, err := runCLI(t, append([]string{"apply", dir}, kc...)...); err != nil {
		t.Fatalf("apply: %v\n%s\n%s", err, out, errOut)
	}
	t.Logf("apply took %s", time.Since(start).Round(100*time.Millisecond))

	writes := &cluster.Writes{}
	conn, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath(), WrapConfig: writes.Wrap})
	if err != nil {
		t.Fatal(err)
	}
	diffNow := func(step string) *diff.Report {
		t.Helper()
		repo, err := load.Dir(dir, platzwart.Builtin(), "")
		if err != nil {
			t.Fatal(err)
		}
		ws, err := render.Repository(t.Context(), repo, render.Options{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rep, err := diff.Cluster(t.Context(), conn, ws, render.Options{})
		if err != nil {
			t.Fatalf("%s: diff: %v", step, err)
		}
		t.Logf("%s: diff.Cluster took %s: %v", step, time.Since(start).Round(time.Millisecond), actions(rep))
		var text strings.Builder
		if err := rep.WriteText(&text, diff.TextOptions{Full: true}); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s:\n%s", step, text.String())
		assertNoSecretValues(t, step, text.String())
		for _, v := range []string{apiKey1, apiKey2, token1, token2} {
			if strings.Contains(text.String(), base64.StdEncoding.EncodeToString([]byte(v))) {
				t.Errorf("%s: the output holds the base64 of a secret value", step)
			}
		}
		if w := writes.List(); len(w) > 0 {
			t.Fatalf("%s: diff wrote to the cluster: %v", step, w)
		}
		return rep
	}

	// Right after apply: nothing to do.
	rep := diffNow("after apply")
	if rep.Changed() {
		t.Fatalf("after apply: changes %v, want every release unchanged", actions(rep))
	}

	// Drift: keycloak scaled by hand.
	patch := []byte(`{"spec":{"replicas":3}}`)
	if _, err := cs.AppsV1().Deployments(ns).Patch(context.Background(), "demo-keycloak", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	rep = diffNow("drift")
	if got := actions(rep); got["demo-keycloak"] != diff.Drift || got["demo-memo"] != diff.Unchanged || got["demo-postgresql"] != diff.Unchanged {
		t.Errorf("drift: actions %v, want keycloak drift, the others unchanged", got)
	}
	if d := objectOf(t, releaseOf(t, rep, "demo-keycloak"), "Deployment", "demo-keycloak"); d.Action != diff.Changed ||
		!strings.Contains(d.Diff, "-  replicas: 3\n+  replicas: 1\n") {
		t.Errorf("drift: Deployment demo-keycloak %s, diff:\n%s\nwant replicas 3 → 1", d.Action, d.Diff)
	}

	// New values: memo's replicas, API key (a Secret) and token (a credential-like env value).
	writeRepo(clusterWorkplace(ns, "memo", 2, apiKey2, token2))
	rep = diffNow("values")
	if got := actions(rep); got["demo-memo"] != diff.Upgrade || got["demo-keycloak"] != diff.Drift {
		t.Errorf("values: actions %v, want memo upgrade and keycloak still drift", got)
	}
	memo := releaseOf(t, rep, "demo-memo")
	if d := objectOf(t, memo, "Deployment", "demo-memo"); !strings.Contains(d.Diff, "-  replicas: 1\n+  replicas: 2\n") ||
		!strings.Contains(d.Diff, "-          value: '***'\n+          value: '*** (changed)'\n") {
		t.Errorf("values: Deployment demo-memo diff:\n%s\nwant replicas 1 → 2 and the token masked as changed", d.Diff)
	}
	if d := objectOf(t, memo, "Secret", "demo-memo"); !strings.Contains(d.Diff, "-  api-key: '***'\n+  api-key: '*** (changed)'\n") {
		t.Errorf("values: Secret demo-memo diff:\n%s\nwant the key masked as changed", d.Diff)
	}

	// The CLI: text output with headers, --exit-code 1.
	out, errOut, err := runCLI(t, append([]string{"diff", dir, "--exit-code"}, kc...)...)
	if exitCode(err) != exitChanges || !silent(err) {
		t.Errorf("diff --exit-code with changes: %v (exit %d), want exit 1 and no message\n%s", err, exitCode(err), errOut)
	}
	for _, h := range []string{
		fmt.Sprintf("=== %s/demo-memo (memo): upgrade: 2 changed\n", ns),
		fmt.Sprintf("=== %s/demo-keycloak (keycloak): drift: 1 changed\n", ns),
		fmt.Sprintf("=== %s/demo-postgresql (postgresql): unchanged\n", ns),
		"live → planned: 1 upgrade, 1 drift, 3 unchanged\n", // postgresql, valkey and portal
	} {
		if !strings.Contains(out, h) {
			t.Errorf("diff output lacks %q:\n%s", h, out)
		}
	}
	assertNoSecretValues(t, "platzwart diff", out+errOut)

	// memo deselected: its release is uninstalled, its objects removed.
	writeRepo(clusterWorkplace(ns, "none", 1, apiKey1, token1))
	rep = diffNow("deselected")
	memo = releaseOf(t, rep, "demo-memo")
	if memo.Action != diff.Uninstall || memo.Count(diff.Removed) != 2 {
		t.Errorf("deselected: memo %s with objects %+v, want uninstall removing its Secret and Deployment", memo.Action, memo.Objects)
	}
	if w := writes.List(); len(w) != 0 {
		t.Errorf("diff wrote: %v", w)
	}
}

// TestDiffVersionPathAgainstTheCluster applies a workplace with Nextcloud pinned to
// 33.0.7 to the local control plane. Without the pin, diff shows Nextcloud's
// upgrade with the engine's version path from the version recorded in Helm's
// storage (header and JSON) and no versions for the other releases. After that
// upgrade is applied, every release is unchanged without versions, and pinning
// 33.0.7 again is refused as a downgrade naming the release and the pin, with exit
// status 2. No diff writes anything.
func TestDiffVersionPathAgainstTheCluster(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	dir := t.TempDir()
	workplace := filepath.Join(dir, "workplace.yaml")
	writeWorkplace := func(pin string) {
		t.Helper()
		if err := os.WriteFile(workplace, []byte(versionWorkplace(ns, pin, "100")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kc := []string{"--kubeconfig", c.KubeconfigPath()}
	apply := func(step string) {
		t.Helper()
		start := time.Now()
		if out, errOut, err := runCLI(t, append([]string{"apply", dir}, kc...)...); err != nil {
			t.Fatalf("%s: apply: %v\n%s\n%s", step, err, out, errOut)
		}
		t.Logf("%s: apply took %s", step, time.Since(start).Round(100*time.Millisecond))
	}
	writes := &cluster.Writes{}
	conn, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath(), WrapConfig: writes.Wrap})
	if err != nil {
		t.Fatal(err)
	}
	diffNow := func(step string) (*diff.Report, error) {
		t.Helper()
		repo, err := load.Dir(dir, platzwart.Builtin(), "")
		if err != nil {
			t.Fatal(err)
		}
		ws, err := render.Repository(t.Context(), repo, render.Options{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rep, err := diff.Cluster(t.Context(), conn, ws, render.Options{})
		t.Logf("%s: diff.Cluster took %s", step, time.Since(start).Round(time.Millisecond))
		if w := writes.List(); len(w) > 0 {
			t.Fatalf("%s: diff wrote to the cluster: %v", step, w)
		}
		return rep, err
	}
	versions := func(rep *diff.Report) map[string][]string {
		m := map[string][]string{}
		for _, r := range rep.Releases {
			m[r.Name] = r.Versions
		}
		return m
	}

	writeWorkplace("33.0.7")
	apply("pinned")

	// The pin removed: Nextcloud follows the newest version, one step.
	writeWorkplace("")
	rep, err := diffNow("newest")
	if err != nil {
		t.Fatalf("newest: %v", err)
	}
	var text strings.Builder
	if err := rep.WriteText(&text, diff.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("newest:\n%s", text.String())
	if got := actions(rep); got["demo-nextcloud"] != diff.Upgrade || got["demo-keycloak"] != diff.Unchanged || got["demo-postgresql"] != diff.Unchanged {
		t.Errorf("newest: actions %v, want nextcloud upgrade, keycloak and postgresql unchanged", got)
	}
	if got, want := versions(rep), map[string][]string{"demo-nextcloud": {"33.0.7", "34.0.4"}}; !versionsEqual(got, want) {
		t.Errorf("newest: versions %q, want %q and none for the others", got, want)
	}
	header := fmt.Sprintf("=== %s/demo-nextcloud (nextcloud): upgrade (versions 33.0.7 → 34.0.4): ", ns)
	if !strings.Contains(text.String(), header) {
		t.Errorf("newest: text lacks %q", header)
	}
	js, errOut, err := runCLI(t, append([]string{"diff", "-o", "json", dir}, kc...)...)
	if err != nil {
		t.Fatalf("diff -o json: %v\n%s", err, errOut)
	}
	cli := decodeDiffJSON(t, js)
	got := map[string][]string{}
	for _, r := range cli.Releases {
		got[r.Name] = r.Versions
	}
	if want := (map[string][]string{"demo-nextcloud": {"33.0.7", "34.0.4"}}); !versionsEqual(got, want) {
		t.Errorf("diff -o json: versions %q, want %q and none for the others", got, want)
	}

	// Applied: nothing to do, no versions anywhere.
	apply("newest")
	if rep, err = diffNow("after the upgrade"); err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
	if rep.Changed() || !versionsEqual(versions(rep), nil) {
		t.Errorf("after the upgrade: actions %v, versions %q; want every release unchanged without versions", actions(rep), versions(rep))
	}

	// The pin back: a downgrade, refused.
	writeWorkplace("33.0.7")
	_, err = diffNow("pinned again")
	var refused *upgrade.DowngradeError
	if !errors.As(err, &refused) {
		t.Fatalf("pinned again: %v, want a *upgrade.DowngradeError", err)
	}
	t.Logf("pinned again: %v", err)
	for _, s := range []string{"demo-nextcloud", `Workplace "demo": spec.versions.nextcloud`, "downgrade from 34.0.4 to 33.0.7"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("pinned again: the refusal %q does not say %q", err, s)
		}
	}
	for _, format := range []string{"text", "json"} {
		out, errOut, err := runCLI(t, append([]string{"diff", "-o", format, dir}, kc...)...)
		if !errors.As(err, &refused) || exitCode(err) != exitFailed || !strings.Contains(err.Error(), "spec.versions.nextcloud") {
			t.Errorf("diff -o %s pinned again: %v (exit %d), want the downgrade refused with exit status 2\n%s%s", format, err, exitCode(err), out, errOut)
		}
	}
	if w := writes.List(); len(w) != 0 {
		t.Errorf("diff wrote: %v", w)
	}
}

// versionsEqual compares version paths by release, a release without versions
// the same as one not listed.
func versionsEqual(got, want map[string][]string) bool {
	for name, v := range got {
		if !slices.Equal(v, want[name]) {
			return false
		}
	}
	for name, v := range want {
		if !slices.Equal(v, got[name]) {
			return false
		}
	}
	return true
}
