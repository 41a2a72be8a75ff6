package release_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/release"
)

func TestMain(m *testing.M) { os.Exit(cluster.RunTests(m)) }

// failingLeases makes every Lease write fail while on is set: the API server stays
// reachable for everything else.
type failingLeases struct {
	on   atomic.Bool
	next http.RoundTripper
}

func (f *failingLeases) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.on.Load() && req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/leases/") {
		return nil, errors.New("test: lease writes fail")
	}
	return f.next.RoundTrip(req)
}

func connect(t *testing.T, f *failingLeases) *kube.Cluster {
	t.Helper()
	c := cluster.FromTest(t)
	opts := kube.Options{Kubeconfig: c.KubeconfigPath()}
	if f != nil {
		opts.WrapConfig = func(cfg *rest.Config) *rest.Config {
			cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { f.next = rt; return f })
			return cfg
		}
	}
	kc, err := kube.Connect(opts)
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

// foreignLease writes the workplace's Lease as another holder would.
func foreignLease(t *testing.T, kc *kube.Cluster, ns, holder string, renew time.Time) *coordinationv1.Lease {
	t.Helper()
	now := metav1.NewMicroTime(renew)
	l, err := kc.Clientset.CoordinationV1().Leases(ns).Create(t.Context(), &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: release.LeaseName("demo"), Namespace: ns},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To(int32(3)),
			AcquireTime: &now, RenewTime: &now},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLeaseOfEndedProcessTakenOverAtOnce: a Lease held by a process of this host
// that has ended is taken at once; one held by a live process elsewhere is not.
func TestLeaseOfEndedProcessTakenOverAtOnce(t *testing.T) {
	t.Parallel()
	kc := connect(t, nil)
	ns := cluster.FromTest(t).NewNamespace(t)
	ended := exec.Command("true")
	if err := ended.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	foreignLease(t, kc, ns, fmt.Sprintf("platzwart-cli@%s/%d", host, ended.Process.Pid), time.Now())
	eng := release.New(kc, release.Options{LeaseDuration: time.Hour})
	start := time.Now()
	l, err := eng.Lock(t.Context(), context.Background(), ns, "demo", "test@here/1")
	if err != nil {
		t.Fatalf("lease of an ended process: %v", err)
	}
	t.Logf("taken over after %s", time.Since(start))
	if err := l.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}

	ns2 := cluster.FromTest(t).NewNamespace(t)
	foreignLease(t, kc, ns2, fmt.Sprintf("platzwart-controller@elsewhere/%d", os.Getpid()), time.Now())
	_, err = eng.Lock(t.Context(), context.Background(), ns2, "demo", "test@here/1")
	var locked *release.LockedError
	if !errors.As(err, &locked) || locked.Holder != fmt.Sprintf("platzwart-controller@elsewhere/%d", os.Getpid()) {
		t.Fatalf("lease of a live holder on another host: want LockedError naming it, got %v", err)
	}
}

// TestLeaseExpiryIsTheServersView: expiry is judged by how long the Lease stayed
// unchanged on the API server, on this process's clock: a holder whose clock runs an
// hour ahead still loses an abandoned Lease after its duration, and a holder that
// keeps renewing keeps it although its renewTime is an hour behind our clock.
func TestLeaseExpiryIsTheServersView(t *testing.T) {
	t.Parallel()
	kc := connect(t, nil)
	ns := cluster.FromTest(t).NewNamespace(t)
	eng := release.New(kc, release.Options{LeaseDuration: 3 * time.Second})

	// Abandoned, with a renewTime an hour in the future.
	foreignLease(t, kc, ns, "ahead@elsewhere/1", time.Now().Add(time.Hour))
	var locked *release.LockedError
	if _, err := eng.Lock(t.Context(), context.Background(), ns, "demo", "test@here/1"); !errors.As(err, &locked) {
		t.Fatalf("first look at a fresh foreign lease: want LockedError, got %v", err)
	}
	time.Sleep(3500 * time.Millisecond)
	l, err := eng.Lock(t.Context(), context.Background(), ns, "demo", "test@here/1")
	if err != nil {
		t.Fatalf("lease unchanged for its duration must be taken over: %v", err)
	}
	_ = l.Unlock(t.Context())

	// Renewed every second, with a renewTime an hour in the past.
	ns2 := cluster.FromTest(t).NewNamespace(t)
	lease := foreignLease(t, kc, ns2, "behind@elsewhere/1", time.Now().Add(-time.Hour))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		for i := 1; ctx.Err() == nil; i++ {
			time.Sleep(time.Second)
			renew := metav1.NewMicroTime(time.Now().Add(-time.Hour + time.Duration(i)*time.Second))
			lease.Spec.RenewTime = &renew
			if got, err := kc.Clientset.CoordinationV1().Leases(ns2).Update(ctx, lease, metav1.UpdateOptions{}); err == nil {
				lease = got
			}
		}
	}()
	deadline := time.Now().Add(7 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := eng.Lock(t.Context(), context.Background(), ns2, "demo", "test@here/1"); !errors.As(err, &locked) {
			t.Fatalf("a lease renewed every second was taken: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestLostLeaseCancelsTheWork: the lock's context ends with ErrLeaseLost when another
// holder takes the Lease, and when renewals fail for two thirds of its duration.
func TestLostLeaseCancelsTheWork(t *testing.T) {
	t.Parallel()
	f := &failingLeases{}
	kc := connect(t, f)
	ns := cluster.FromTest(t).NewNamespace(t)
	eng := release.New(kc, release.Options{LeaseDuration: 3 * time.Second})

	l, err := eng.Lock(t.Context(), context.Background(), ns, "demo", "test@here/1")
	if err != nil {
		t.Fatal(err)
	}
	leases := kc.Clientset.CoordinationV1().Leases(ns)
	cur, err := leases.Get(t.Context(), release.LeaseName("demo"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Spec.HolderIdentity = ptr.To("thief@elsewhere/1")
	if _, err := leases.Update(t.Context(), cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Context().Done():
		if !errors.Is(context.Cause(l.Context()), release.ErrLeaseLost) || !strings.Contains(context.Cause(l.Context()).Error(), "thief") {
			t.Errorf("cause %v, want ErrLeaseLost naming the new holder", context.Cause(l.Context()))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the lock's context was not cancelled after another holder took the lease")
	}
	_ = l.Unlock(t.Context())
	if got, _ := leases.Get(t.Context(), release.LeaseName("demo"), metav1.GetOptions{}); ptr.Deref(got.Spec.HolderIdentity, "") != "thief@elsewhere/1" {
		t.Errorf("unlock of a lost lease removed the new holder's lease: %+v", got)
	}

	ns2 := cluster.FromTest(t).NewNamespace(t)
	l2, err := eng.Lock(t.Context(), context.Background(), ns2, "demo", "test@here/1")
	if err != nil {
		t.Fatal(err)
	}
	f.on.Store(true)
	start := time.Now()
	select {
	case <-l2.Context().Done():
		t.Logf("cancelled %s after renewals started failing: %v", time.Since(start).Round(time.Millisecond), context.Cause(l2.Context()))
		if !errors.Is(context.Cause(l2.Context()), release.ErrLeaseLost) {
			t.Errorf("cause %v, want ErrLeaseLost", context.Cause(l2.Context()))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the lock's context was not cancelled while renewals failed")
	}
	f.on.Store(false)
	_ = l2.Unlock(t.Context())
}
