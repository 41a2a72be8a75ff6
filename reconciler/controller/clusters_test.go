package controller_test

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/controller"
	"github.com/platzwart/platzwart/reconciler/source"
)

// TestTwoClusters: one controller, running against cluster A, serves a Workplace on
// A and one on a second local control plane B (spec.kubeConfig naming a Secret on
// A). Each lands in its own cluster only, and a hand edit on B is corrected at its
// watch event. A third Workplace names a cluster that accepts connections and never
// answers: it is reported ClusterUnreachable while the others converge. When B
// stops, its Workplace reports it and A's keeps converging on new commits.
func TestTwoClusters(t *testing.T) {
	t.Parallel()
	a := cluster.FromTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	b, err := cluster.Start(ctx, cluster.Options{Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	var stopB sync.Once
	stopBCluster := func() {
		stopB.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := b.Stop(sctx); err != nil {
				t.Errorf("stopping cluster B: %v", err)
			}
		})
	}
	t.Cleanup(stopBCluster)
	csA, csB := clientsetOf(t, a), clientsetOf(t, b)

	nsA, nsB, nsX := a.NewNamespace(t), a.NewNamespace(t), a.NewNamespace(t)
	kubeconfigB, err := os.ReadFile(b.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	putSecret(t, csA, nsB, "cluster-b", kubeconfigB)
	putSecret(t, csA, nsX, "cluster-x", hangingKubeconfig(t, kubeconfigB))

	remote := func(ns, secret string) string {
		return strings.Replace(smallWorkplace(t, ns), "  dataPolicy: Retain", "  dataPolicy: Retain\n  kubeConfig: {secretRef: {name: "+secret+"}}", 1)
	}
	docs := func(valkeyA string) string {
		docA := smallWorkplace(t, nsA)
		if valkeyA != "" {
			docA = strings.Replace(docA, "  values:\n", "  values:\n    valkey: {podAnnotations: {commit: \""+valkeyA+"\"}}\n", 1)
		}
		return docA + "---\n" + remote(nsB, "cluster-b") + "---\n" + remote(nsX, "cluster-x")
	}
	repo := newGitRepo(t, docs(""))
	head := repo.git("rev-parse", "HEAD")
	startController(t, a, controller.Options{
		Name:     "clusters",
		Selector: testSelector(t, nsA, nsB, nsX),
		Source:   source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval: time.Second,
		Requeue:  2 * time.Second,
	})
	cl := workplaceClient(t, a)
	waitWorkplace(t, cl, nsA, "demo", "Ready on A", 3*time.Minute, readyAt(head))
	waitWorkplace(t, cl, nsB, "demo", "Ready on B", 3*time.Minute, readyAt(head))
	unreachable := func(w *v1alpha1.Workplace) bool {
		c := meta.FindStatusCondition(w.Status.Conditions, controller.ConditionReconciling)
		return c != nil && c.Reason == "ClusterUnreachable"
	}
	x := waitWorkplace(t, cl, nsX, "demo", "ClusterUnreachable", time.Minute, unreachable)
	t.Logf("unreachable cluster: %s", meta.FindStatusCondition(x.Status.Conditions, controller.ConditionReconciling).Message)

	// Each Workplace's releases are in its own cluster only.
	assertReleases(t, csA, nsA, true, "A has A's releases")
	assertReleases(t, csB, nsB, true, "B has B's releases")
	assertReleases(t, csA, nsB, false, "A has none of B's releases")
	if _, err := csB.CoreV1().Namespaces().Get(t.Context(), nsA, metav1.GetOptions{}); err == nil {
		t.Errorf("namespace %s of A's Workplace exists on B", nsA)
	}
	before := snapshot(t, csB, nsB)

	// A hand edit on B is corrected at its watch event on B.
	start := time.Now()
	if _, err := csB.AppsV1().Deployments(nsB).Patch(t.Context(), "demo-valkey", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReplicas(t, csB, nsB, "demo-valkey", 1, time.Minute)
	t.Logf("hand edit on B corrected after %s", time.Since(start).Round(time.Millisecond))
	assertKept(t, csB, nsB, before)

	// While X never answers, a commit changing A's Workplace converges.
	start = time.Now()
	head = repo.push(docs("1"), "change A")
	waitWorkplace(t, cl, nsA, "demo", "Ready at the new commit beside an unreachable cluster", 2*time.Minute, readyAt(head))
	t.Logf("A converged after %s", time.Since(start).Round(time.Millisecond))

	// B stops: its Workplace reports it; A goes on.
	stopBCluster()
	waitWorkplace(t, cl, nsB, "demo", "ClusterUnreachable after B stopped", 2*time.Minute, unreachable)
	start = time.Now()
	head = repo.push(docs("2"), "change A again")
	waitWorkplace(t, cl, nsA, "demo", "Ready at the next commit with B down", 2*time.Minute, readyAt(head))
	t.Logf("A converged after %s with B down and X hanging", time.Since(start).Round(time.Millisecond))
}

// putSecret stores a kubeconfig under the key "value", as Flux's kubeConfig does.
func putSecret(t *testing.T, cs kubernetes.Interface, ns, name string, kubeconfig []byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{"value": kubeconfig}}
	if _, err := cs.CoreV1().Secrets(ns).Create(t.Context(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// hangingKubeconfig returns kubeconfig pointed at a loopback server that accepts
// connections and never answers (the worst case of an unreachable cluster: every
// request waits for its timeout).
func hangingKubeconfig(t *testing.T, kubeconfig []byte) []byte {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + l.Addr().String()
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// assertReleases checks whether ns of a cluster holds Helm release records of the
// Workplace demo.
func assertReleases(t *testing.T, cs kubernetes.Interface, ns string, want bool, what string) {
	t.Helper()
	list, err := cs.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "owner=helm,platzwart.io/workplace=demo"})
	if err != nil && want {
		t.Fatalf("%s: %v", what, err)
	}
	if got := err == nil && len(list.Items) > 0; got != want {
		n := 0
		if list != nil {
			n = len(list.Items)
		}
		t.Errorf("%s: %d release records in %s", what, n, ns)
	}
}

// TestWorkplacesWaitInLineForTheirCluster: with one full reconcile at a time per
// cluster, three new Workplaces of one commit wait in line without polling and are
// each woken when the one before frees the slot: all three become Ready (a lost
// wake-up would leave one waiting for ever: nothing requeues a Workplace in line).
func TestWorkplacesWaitInLineForTheirCluster(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := []string{c.NewNamespace(t), c.NewNamespace(t), c.NewNamespace(t)}
	repo := newGitRepo(t, smallWorkplace(t, ns[0])+"---\n"+smallWorkplace(t, ns[1])+"---\n"+smallWorkplace(t, ns[2]))
	head := repo.git("rev-parse", "HEAD")
	startController(t, c, controller.Options{
		Name:               "line",
		Selector:           testSelector(t, ns...),
		Source:             source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval:           time.Hour,
		Requeue:            time.Hour,
		Concurrency:        2,
		ClusterConcurrency: 1,
	})
	cl := workplaceClient(t, c)
	for _, n := range ns {
		waitWorkplace(t, cl, n, "demo", "Ready", 3*time.Minute, readyAt(head))
	}
}
