package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/platzwart/platzwart/e2e/cluster"
)

// stabilityDuration is how long the control plane must stay stable under
// load. PLATZWART_E2E_STABILITY_DURATION overrides it for development.
const stabilityDuration = 5 * time.Minute

// evictionReasons are event reasons that show a node going away or pods being
// evicted.
var evictionReasons = map[string]bool{
	"Evicted":              true,
	"TaintManagerEviction": true,
	"NodeNotReady":         true,
	"NodeNotSchedulable":   true,
	"Preempted":            true,
}

// TestControlPlaneStaysStableUnderLoad keeps a Deployment running for five
// minutes while every core is busy and checks that the kwok nodes never leave
// Ready and that no pod is evicted or replaced. It guards against the kwok
// node-lease trap (nodes flapping NotReady every ~55 s).
func TestControlPlaneStaysStableUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("takes five minutes; skipped with -short")
	}
	t.Parallel()
	duration := stabilityDuration
	if s := os.Getenv("PLATZWART_E2E_STABILITY_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("PLATZWART_E2E_STABILITY_DURATION: %v", err)
		}
		duration = d
	}

	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	client := kubernetes.NewForConfigOrDie(c.Config())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	if _, err := client.AppsV1().Deployments(ns).Create(ctx, newDeployment("steady", 3), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	waitFor(t, "deployment steady Available", time.Minute, func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "steady", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return deploymentAvailable(d), nil
	})
	before := podUIDs(t, client, ns)

	w := &problems{t: t}
	since := time.Now()
	// Only what the controller-manager logs from now on counts: at start-up it may
	// briefly see the nodes not Ready yet (before kwok's first heartbeat) and say so.
	logStart := logSize(c)
	watchCluster(ctx, t, client, ns, since, w)

	burners := runtime.NumCPU() + 1
	var burning sync.WaitGroup
	for range burners {
		burning.Go(func() { burnCPU(ctx) })
	}
	t.Logf("%d CPU burners running; watching nodes, pods and events for %s", burners, duration)

	deadline := time.NewTimer(duration)
	defer deadline.Stop()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-deadline.C:
			break wait
		case <-ctx.Done():
			t.Fatalf("stability test cancelled: %v", ctx.Err())
		case <-tick.C:
			t.Logf("%s under load, %d problems so far", time.Since(since).Round(time.Second), w.count())
		}
	}
	cancel()
	burning.Wait()

	// Final state: same pods, still available, nodes Ready.
	final, cancelFinal := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancelFinal()
	d, err := client.AppsV1().Deployments(ns).Get(final, "steady", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get deployment: %v", err)
	}
	if !deploymentAvailable(d) {
		w.add("deployment steady is not Available at the end: %+v", d.Status)
	}
	if after := podUIDs(t, client, ns); !sameSet(before, after) {
		w.add("the pods of deployment steady were replaced: before %v, after %v", before, after)
	}
	nodes, err := client.CoreV1().Nodes().List(final, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	for _, node := range nodes.Items {
		if !cluster.NodeReady(&node) {
			w.add("node %s is not Ready at the end", node.Name)
		}
	}
	if dir := c.RunDir(); dir != "" {
		log, err := os.ReadFile(filepath.Join(dir, "kube-controller-manager.log"))
		if err != nil {
			t.Fatalf("read controller-manager log: %v", err)
		}
		if int64(len(log)) >= logStart {
			log = log[logStart:]
		}
		if n := strings.Count(string(log), "Entering master disruption mode"); n > 0 {
			w.add("kube-controller-manager entered master disruption mode %d times", n)
		}
	}
	w.report()
}

// problems collects what went wrong, from several goroutines.
type problems struct {
	t    *testing.T
	mu   sync.Mutex
	list []string
}

func (p *problems) add(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, time.Now().Format(time.TimeOnly)+" "+msg)
}

func (p *problems) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.list)
}

func (p *problems) report() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.list) > 0 {
		p.t.Errorf("control plane unstable under load:\n%s", strings.Join(p.list, "\n"))
	}
}

// watchCluster reports nodes leaving Ready, pod evictions and eviction events
// anywhere, and any change to the pods of namespace ns, until ctx is done.
func watchCluster(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string, since time.Time, w *problems) {
	t.Helper()
	factory := informers.NewSharedInformerFactory(client, 0)
	checkNode := func(obj any) {
		node, ok := obj.(*corev1.Node)
		if !ok {
			return
		}
		if !cluster.NodeReady(node) {
			w.add("node %s is not Ready: %+v", node.Name, node.Status.Conditions)
		}
		for _, taint := range node.Spec.Taints {
			if taint.Key == corev1.TaintNodeNotReady || taint.Key == corev1.TaintNodeUnreachable {
				w.add("node %s has taint %s", node.Name, taint.ToString())
			}
		}
	}
	if _, err := factory.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    checkNode,
		UpdateFunc: func(_, obj any) { checkNode(obj) },
		DeleteFunc: func(obj any) { w.add("a node was deleted: %v", obj) },
	}); err != nil {
		t.Fatalf("watch nodes: %v", err)
	}

	checkPod := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		if pod.Status.Reason == "Evicted" {
			w.add("pod %s/%s was evicted: %s", pod.Namespace, pod.Name, pod.Status.Message)
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
				w.add("pod %s/%s is a disruption target: %s: %s", pod.Namespace, pod.Name, c.Reason, c.Message)
			}
			if pod.Namespace == ns && c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
				w.add("pod %s/%s is not Ready: %s", pod.Namespace, pod.Name, c.Message)
			}
		}
	}
	if _, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    checkPod,
		UpdateFunc: func(_, obj any) { checkPod(obj) },
		DeleteFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok && pod.Namespace != ns {
				return // other tests clean up their namespaces
			}
			w.add("a pod of deployment steady was deleted: %v", obj)
		},
	}); err != nil {
		t.Fatalf("watch pods: %v", err)
	}

	if _, err := factory.Core().V1().Events().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			ev, ok := obj.(*corev1.Event)
			if !ok || !evictionReasons[ev.Reason] || eventTime(ev).Before(since) {
				return
			}
			w.add("event %s on %s %s/%s: %s", ev.Reason, ev.InvolvedObject.Kind, ev.InvolvedObject.Namespace, ev.InvolvedObject.Name, ev.Message)
		},
	}); err != nil {
		t.Fatalf("watch events: %v", err)
	}

	factory.Start(ctx.Done())
	t.Cleanup(factory.Shutdown)
	for typ, synced := range factory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			t.Fatalf("watch %v: cache did not sync", typ)
		}
	}
}

func eventTime(ev *corev1.Event) time.Time {
	switch {
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	default:
		return ev.CreationTimestamp.Time
	}
}

func podUIDs(t *testing.T, client kubernetes.Interface, ns string) []types.UID {
	t.Helper()
	pods, err := client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	var uids []types.UID
	for _, p := range pods.Items {
		uids = append(uids, p.UID)
	}
	return uids
}

func sameSet(a, b []types.UID) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[types.UID]bool{}
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}

// burnCPU keeps one core busy until ctx is done.
func burnCPU(ctx context.Context) {
	x := uint64(1)
	for ctx.Err() == nil {
		for range 1_000_000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	_ = x
}

// logSize is the size of the controller-manager's log now (0 for an attached cluster).
func logSize(c *cluster.Cluster) int64 {
	if c.RunDir() == "" {
		return 0
	}
	fi, err := os.Stat(filepath.Join(c.RunDir(), "kube-controller-manager.log"))
	if err != nil {
		return 0
	}
	return fi.Size()
}
