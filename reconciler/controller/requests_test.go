package controller_test

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/controller"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/source"
)

// upgradeRequestBudget is how many API requests the controller may make for one
// commit that changes one value of one release of a three-release workplace, from
// the Workplace's update to its verification. 75 were measured when kstatus listed
// six kinds per poll and the roll-out's status updates woke the Workplace for two
// more full reconciles; 62 with readiness from the watches, 58 once the preflight
// left alone the objects the upgrade does not change.
const upgradeRequestBudget = 62

// TestUpgradeRequests counts the requests of an upgrade: readiness is read from
// the watches (no List per poll, none of the ReplicaSets and Pods kstatus's
// Deployment reader lists), the preflight dry-runs only the objects that change,
// and the roll-out's status updates wake no reconcile, so that one upgrade and one
// verifying reconcile do the work.
func TestUpgradeRequests(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	doc := func(maxmemory string) string {
		return strings.Replace(smallWorkplace(t, ns), "  values:\n", "  values:\n    valkey: {config: {maxmemory: "+maxmemory+"}}\n", 1)
	}
	repo := newGitRepo(t, doc("96mb"))
	head := repo.git("rev-parse", "HEAD")
	reqs := &cluster.Requests{}
	startController(t, c, controller.Options{
		Name:       "requests",
		Selector:   testSelector(t, ns),
		Source:     source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval:   time.Second,
		Requeue:    time.Hour,
		FullResync: time.Hour,
		Cluster:    kube.Options{WrapConfig: reqs.Wrap},
	})
	cl := workplaceClient(t, c)
	waitWorkplace(t, cl, ns, "demo", "Ready", 3*time.Minute, readyAt(head))
	// The install's last writes (Events, the watches' first lists) are not counted.
	time.Sleep(3 * time.Second)
	reqs.Reset()
	head = repo.push(doc("97mb"), "valkey: maxmemory 97mb")
	waitWorkplace(t, cl, ns, "demo", "Ready", 3*time.Minute, readyAt(head))
	// The verifying reconcile after the upgrade.
	time.Sleep(3 * time.Second)

	all := reqs.List()
	byKind := map[string]int{}
	count := map[string]int{}
	nsPath := regexp.MustCompile(`/namespaces/[^/]+`)
	for _, r := range all {
		method, uri, _ := strings.Cut(r, " ")
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatal(err)
		}
		path := nsPath.ReplaceAllString(u.Path, "/-")
		q := u.Query()
		if q.Get("watch") != "" {
			continue
		}
		key := method + " " + path
		if q.Get("dryRun") != "" {
			key += " (dry run)"
		}
		count[key]++
		if method == "GET" && q.Get("labelSelector") == "" {
			// A List has the kind as the last path element after the namespace.
			if parts := strings.Split(path, "/"); len(parts) > 1 && parts[len(parts)-2] == "-" {
				byKind[parts[len(parts)-1]]++
			}
		}
	}
	var lines []string
	for k, n := range count {
		lines = append(lines, fmt.Sprintf("%4d %s", n, k))
	}
	sort.Strings(lines)
	breakdown := strings.Join(lines, "\n")
	t.Logf("%d requests for the upgrade and its verification:\n%s", len(all), breakdown)
	for _, kind := range []string{"pods", "replicasets"} {
		if byKind[kind] > 0 {
			t.Errorf("readiness listed %s %d times: it must come from the watches", kind, byKind[kind])
		}
	}
	for kind, n := range byKind {
		// One List per kind per full reconcile (the drift check of unchanged
		// releases); polling readiness listed each kind per poll.
		if n > 2 {
			t.Errorf("%s listed %d times, want at most 2 (one per full reconcile)", kind, n)
		}
	}
	for k := range count {
		// maxmemory changes valkey's ConfigMap and, through its checksum annotation,
		// its Deployment; its Service and NetworkPolicy stay as they are.
		if strings.HasSuffix(k, "(dry run)") && !strings.Contains(k, "/configmaps/") && !strings.Contains(k, "/deployments/") {
			t.Errorf("the preflight dry-ran an object the upgrade does not change: %s", k)
		}
	}
	if len(all) > upgradeRequestBudget {
		t.Errorf("%d requests, want at most %d", len(all), upgradeRequestBudget)
	}
}
