package reconciler_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/upgrade"
)

// TestVersionStepsOnTheCluster installs the example with Nextcloud pinned to its
// older listed version, then follows the newest (one allowed step), then pins the
// older version again: that downgrade is refused before anything is written, naming
// the pin, and the deployed version recorded in Helm's storage is the newer one.
func TestVersionStepsOnTheCluster(t *testing.T) {
	e := newEnv(t)
	pinned := e.plan(e.workplaceDir(map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n  versions: {nextcloud: 33.0.7}\n"}, nil))
	e.reconcile(pinned)
	if got := e.versionLabel("demo-nextcloud"); got != "33.0.7" {
		t.Fatalf("version recorded after the pinned install: %q, want 33.0.7", got)
	}

	newest := e.plan(e.workplaceDir(nil, nil))
	e.reconcile(newest)
	var want string
	for _, r := range newest.Releases {
		if r.Component == "nextcloud" {
			want = r.Version
		}
	}
	if got := e.versionLabel("demo-nextcloud"); got != want || want == "33.0.7" {
		t.Fatalf("version recorded after following the newest: %q, want %q", got, want)
	}

	e.count.reset()
	_, err := e.rec.Reconcile(t.Context(), pinned)
	var down *upgrade.DowngradeError
	if !errors.As(err, &down) {
		t.Fatalf("pinning the older version again: %v, want a *upgrade.DowngradeError", err)
	}
	if !strings.Contains(err.Error(), "spec.versions.nextcloud") {
		t.Errorf("the refusal does not name the pin: %v", err)
	}
	if _, mutating := e.count.snapshot(); len(mutating) > 0 {
		t.Errorf("the refused downgrade wrote to the cluster: %v", mutating)
	}
	if got := e.versionLabel("demo-nextcloud"); got != want {
		t.Errorf("version recorded after the refusal: %q, want %q", got, want)
	}
}

// versionLabel returns the platzwart.io/version label of a release's newest revision.
func (e *env) versionLabel(name string) string {
	e.t.Helper()
	list, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).List(e.t.Context(), metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		e.t.Fatal(err)
	}
	best, label := -1, ""
	for _, s := range list.Items {
		v, _ := strconv.Atoi(s.Labels["version"])
		if v > best {
			best, label = v, s.Labels[release.LabelVersion]
		}
	}
	if best < 0 {
		e.t.Fatalf("release %s has no revision", name)
	}
	return label
}
