package release

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// DefaultLeaseDuration is how long a lock holder may go silent before another may
// take over.
const DefaultLeaseDuration = 60 * time.Second

// LeaseName is the name of a workplace's Lease.
func LeaseName(workplace string) string { return "platzwart-" + workplace }

// Holder identifies this process as a lock holder: role@host/pid. The host and pid
// let a process on the same host tell that a holder is gone (see holderGone).
func Holder(role string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s/%d", role, host, os.Getpid())
}

// LockedError says that another process holds a workplace's Lease. It is contention,
// not a failure of the workplace: the caller retries later.
type LockedError struct {
	// Namespace and Workplace whose Lease is held.
	Namespace, Workplace string
	// Holder is the holder identity recorded in the Lease.
	Holder string
	// Unchanged is how long this process has seen the Lease unrenewed (0 on the first look).
	Unchanged time.Duration
	// Duration is the lease duration after which an unrenewed Lease is taken over.
	Duration time.Duration
}

func (e *LockedError) Error() string {
	msg := fmt.Sprintf("workplace %s/%s is being reconciled by %s (lease %s", e.Namespace, e.Workplace, e.Holder, LeaseName(e.Workplace))
	if e.Unchanged > 0 {
		msg += fmt.Sprintf(", not renewed for %s of %s", e.Unchanged.Round(time.Second), e.Duration)
	}
	return msg + "); try again when it is done"
}

// ErrLeaseLost is the cause of a Lock's context when the Lease could not be renewed
// or was taken by another holder: every write under the lock stops.
var ErrLeaseLost = errors.New("the workplace lease was lost")

// observation is the last state of a foreign Lease this engine saw, on its own clock.
type observation struct {
	resourceVersion string
	since           time.Time
}

// leaseObserver judges expiry the way client-go's leader election does: by how long
// the Lease object stayed unchanged on the API server, measured with this process's
// monotonic clock, never by comparing the holder's renewTime with the local clock.
type leaseObserver struct {
	mu   sync.Mutex
	seen map[string]observation
}

// unchangedFor records cur and returns how long it has been seen unchanged.
func (o *leaseObserver) unchangedFor(cur *coordinationv1.Lease) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil {
		o.seen = map[string]observation{}
	}
	key := cur.Namespace + "/" + cur.Name
	prev, ok := o.seen[key]
	if !ok || prev.resourceVersion != cur.ResourceVersion {
		o.seen[key] = observation{resourceVersion: cur.ResourceVersion, since: time.Now()}
		return 0
	}
	return time.Since(prev.since)
}

func (o *leaseObserver) forget(namespace, name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.seen, namespace+"/"+name)
}

// holderGone reports whether holder is a process of this host that has ended, so its
// Lease can be taken over at once instead of after the lease duration.
func holderGone(holder string) bool {
	at := strings.LastIndex(holder, "@")
	slash := strings.LastIndex(holder, "/")
	if at < 0 || slash < at {
		return false
	}
	host, _ := os.Hostname()
	if holder[at+1:slash] != host {
		return false
	}
	pid, err := strconv.Atoi(holder[slash+1:])
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	// Signal 0 checks existence; ESRCH means no such process. (A recycled pid keeps
	// the lease until it expires, which is safe.)
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// Lock is the per-workplace Lease held while a reconcile changes the cluster, so a CLI
// apply and the controller never act on the same workplace at once. It is fenced: its
// Context is cancelled (cause ErrLeaseLost) as soon as the Lease cannot be renewed in
// time or another holder took it, and every write under the lock uses that context.
type Lock struct {
	e         *Engine
	namespace string
	name      string
	holder    string
	ctx       context.Context
	cancel    context.CancelCauseFunc
	done      chan struct{}

	mu    sync.Mutex
	lease *coordinationv1.Lease
}

// Context is cancelled when the lease is lost or the lock is released. It does not
// derive from the caller's context: a stopping process keeps the lock until its
// in-flight work is done (see Reconciler).
func (l *Lock) Context() context.Context { return l.ctx }

// Lock takes the workplace's Lease once, or returns a *LockedError naming who holds
// it. parent bounds the lock's lifetime (it is not the caller's stop signal). The
// Lease is renewed until Unlock; a Lease left unchanged on the API server for the
// lease duration, or held by an ended process of this host, is taken over.
func (e *Engine) Lock(ctx, parent context.Context, namespace, workplace, holder string) (*Lock, error) {
	name := LeaseName(workplace)
	now := metav1.NewMicroTime(time.Now())
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(holder),
		LeaseDurationSeconds: ptr.To(int32(e.opts.LeaseDuration / time.Second)),
		AcquireTime:          &now,
		RenewTime:            &now,
	}
	var got *coordinationv1.Lease
	var err error
	// A Lease released (deleted) between our create and our read or update is free:
	// create it again, a few times at most.
	for range 3 {
		got, err = e.takeLease(ctx, namespace, workplace, name, holder, spec)
		if !apierrors.IsNotFound(err) {
			break
		}
	}
	if err != nil {
		var locked *LockedError
		if errors.As(err, &locked) {
			return nil, err
		}
		return nil, fmt.Errorf("lease %s/%s: %w", namespace, name, err)
	}
	e.leases.forget(namespace, name)
	lctx, cancel := context.WithCancelCause(parent)
	l := &Lock{e: e, namespace: namespace, name: name, holder: holder, ctx: lctx, cancel: cancel, done: make(chan struct{}), lease: got}
	go l.renew()
	return l, nil
}

// takeLease creates the workplace's Lease or takes over one that expired or whose
// holder ended. A NotFound error means the Lease was deleted meanwhile.
func (e *Engine) takeLease(ctx context.Context, namespace, workplace, name, holder string, spec coordinationv1.LeaseSpec) (*coordinationv1.Lease, error) {
	leases := e.cluster.Clientset.CoordinationV1().Leases(namespace)
	got, err := leases.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{
			"app.kubernetes.io/managed-by": "platzwart", LabelWorkplace: workplace}},
		Spec: spec,
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := leases.Get(ctx, name, metav1.GetOptions{})
		if gerr != nil {
			return nil, gerr
		}
		if h := ptr.Deref(cur.Spec.HolderIdentity, ""); h != "" && h != holder && !holderGone(h) {
			// The holder's own duration counts, not ours: it renews at its pace.
			dur := e.opts.LeaseDuration
			if cur.Spec.LeaseDurationSeconds != nil {
				dur = time.Duration(*cur.Spec.LeaseDurationSeconds) * time.Second
			}
			if d := e.leases.unchangedFor(cur); d < dur {
				return nil, &LockedError{Namespace: namespace, Workplace: workplace, Holder: h, Unchanged: d, Duration: dur}
			}
		}
		cur.Spec = spec
		// The update carries the resourceVersion read above: if anyone renewed or took
		// the Lease meanwhile, it conflicts.
		got, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return nil, &LockedError{Namespace: namespace, Workplace: workplace, Holder: "another reconcile that took it at the same moment"}
		}
	}
	return got, err
}

// renew keeps the lease fresh until Unlock. A renewal that fails is retried; when the
// lease could not be renewed for two thirds of its duration, or another holder took
// it, the lock's context is cancelled so the work holding it stops before another
// process may take over.
func (l *Lock) renew() {
	defer close(l.done)
	duration := l.e.opts.LeaseDuration
	interval := duration / 6
	t := time.NewTicker(interval)
	defer t.Stop()
	leases := l.e.cluster.Clientset.CoordinationV1().Leases(l.namespace)
	lastRenew := time.Now()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(l.ctx, interval)
		l.mu.Lock()
		next := l.lease.DeepCopy()
		l.mu.Unlock()
		now := metav1.NewMicroTime(time.Now())
		next.Spec.RenewTime = &now
		got, err := leases.Update(ctx, next, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			// Someone else wrote the Lease: it is ours only if it still names us.
			cur, gerr := leases.Get(ctx, l.name, metav1.GetOptions{})
			if gerr == nil && ptr.Deref(cur.Spec.HolderIdentity, "") == l.holder {
				next = cur
				next.Spec.RenewTime = &now
				got, err = leases.Update(ctx, next, metav1.UpdateOptions{})
			} else if gerr == nil || apierrors.IsNotFound(gerr) {
				cancel()
				l.cancel(fmt.Errorf("%w: lease %s/%s is now held by %q", ErrLeaseLost, l.namespace, l.name, holderOf(cur)))
				return
			}
		}
		cancel()
		if err == nil {
			l.mu.Lock()
			l.lease = got
			l.mu.Unlock()
			lastRenew = time.Now()
			continue
		}
		if time.Since(lastRenew) > 2*duration/3 {
			l.cancel(fmt.Errorf("%w: lease %s/%s not renewed for %s: %v", ErrLeaseLost, l.namespace, l.name, time.Since(lastRenew).Round(time.Second), err))
			return
		}
	}
}

func holderOf(l *coordinationv1.Lease) string {
	if l == nil {
		return ""
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

// Unlock stops renewing and deletes the lease if this process still holds it.
func (l *Lock) Unlock(ctx context.Context) error {
	lost := context.Cause(l.ctx)
	l.cancel(nil)
	<-l.done
	if lost != nil {
		return nil
	}
	leases := l.e.cluster.Clientset.CoordinationV1().Leases(l.namespace)
	cur, err := leases.Get(ctx, l.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lease %s/%s: %w", l.namespace, l.name, err)
	}
	if ptr.Deref(cur.Spec.HolderIdentity, "") != l.holder {
		return nil
	}
	err = leases.Delete(ctx, l.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &cur.ResourceVersion}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("lease %s/%s: %w", l.namespace, l.name, err)
	}
	return nil
}

// Guard takes a workplace's Lease on first use and holds it until Release: the
// reconciler takes it before any release changes, and drift correction takes it
// before its first write, so every write to a workplace's resources happens under
// the Lease while a no-op cycle never touches it.
type Guard struct {
	e                            *Engine
	parent                       context.Context
	namespace, workplace, holder string

	mu   sync.Mutex
	lock *Lock
}

// Guard returns a guard for a workplace's Lease. parent bounds the lock (see Lock).
func (e *Engine) Guard(parent context.Context, namespace, workplace, holder string) *Guard {
	return &Guard{e: e, parent: parent, namespace: namespace, workplace: workplace, holder: holder}
}

// Acquire takes the Lease unless held already and returns the fenced context writes
// must use.
func (g *Guard) Acquire(ctx context.Context) (context.Context, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lock == nil {
		l, err := g.e.Lock(ctx, g.parent, g.namespace, g.workplace, g.holder)
		if err != nil {
			return nil, err
		}
		g.lock = l
	}
	if err := context.Cause(g.lock.ctx); err != nil {
		return nil, err
	}
	return g.lock.ctx, nil
}

// Held reports whether the Lease was taken.
func (g *Guard) Held() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lock != nil
}

// Lost returns why the Lease was lost, or nil.
func (g *Guard) Lost() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lock == nil {
		return nil
	}
	if err := context.Cause(g.lock.ctx); errors.Is(err, ErrLeaseLost) {
		return err
	}
	return nil
}

// Release gives the Lease back when it was taken.
func (g *Guard) Release(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lock == nil {
		return nil
	}
	err := g.lock.Unlock(ctx)
	g.lock = nil
	return err
}
