package release

import (
	"context"
	"fmt"
	"os"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// leaseDuration is how long a lock holder may go silent before another may take over.
const leaseDuration = 60 * time.Second

// Lock is the per-workplace Lease held while a reconcile changes the cluster, so a CLI
// apply and the controller never act on the same workplace at once.
type Lock struct {
	e         *Engine
	namespace string
	name      string
	holder    string
	stop      chan struct{}
	done      chan struct{}
}

// LeaseName is the name of a workplace's Lease.
func LeaseName(workplace string) string { return "platzwart-" + workplace }

// Holder identifies this process as a lock holder.
func Holder(role string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s/%d", role, host, os.Getpid())
}

// Lock takes the workplace's Lease, or fails naming who holds it. The lease is renewed
// until Unlock; an expired lease of a crashed holder is taken over.
func (e *Engine) Lock(ctx context.Context, namespace, workplace, holder string) (*Lock, error) {
	leases := e.cluster.Clientset.CoordinationV1().Leases(namespace)
	name := LeaseName(workplace)
	now := metav1.NewMicroTime(time.Now())
	want := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{
			"app.kubernetes.io/managed-by": "platzwart", LabelWorkplace: workplace}},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(holder),
			LeaseDurationSeconds: ptr.To(int32(leaseDuration / time.Second)),
			AcquireTime:          &now,
			RenewTime:            &now,
		},
	}
	_, err := leases.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		cur, gerr := leases.Get(ctx, name, metav1.GetOptions{})
		if gerr != nil {
			return nil, fmt.Errorf("lease %s/%s: %w", namespace, name, gerr)
		}
		if h := ptr.Deref(cur.Spec.HolderIdentity, ""); h != "" && h != holder && !expired(cur) {
			return nil, fmt.Errorf("workplace %s/%s is being reconciled by %s (lease %s renewed %s ago); try again when it is done",
				namespace, workplace, h, name, time.Since(cur.Spec.RenewTime.Time).Round(time.Second))
		}
		cur.Spec = want.Spec
		_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			return nil, fmt.Errorf("workplace %s/%s: another reconcile took the lease %s at the same moment", namespace, workplace, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lease %s/%s: %w", namespace, name, err)
	}
	l := &Lock{e: e, namespace: namespace, name: name, holder: holder, stop: make(chan struct{}), done: make(chan struct{})}
	go l.renew()
	return l, nil
}

func expired(l *coordinationv1.Lease) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return true
	}
	return time.Since(l.Spec.RenewTime.Time) > time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second
}

// renew keeps the lease fresh until Unlock.
func (l *Lock) renew() {
	defer close(l.done)
	t := time.NewTicker(leaseDuration / 3)
	defer t.Stop()
	leases := l.e.cluster.Clientset.CoordinationV1().Leases(l.namespace)
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cur, err := leases.Get(ctx, l.name, metav1.GetOptions{})
			if err == nil && ptr.Deref(cur.Spec.HolderIdentity, "") == l.holder {
				now := metav1.NewMicroTime(time.Now())
				cur.Spec.RenewTime = &now
				_, _ = leases.Update(ctx, cur, metav1.UpdateOptions{})
			}
			cancel()
		}
	}
}

// Unlock stops renewing and deletes the lease if this process still holds it.
func (l *Lock) Unlock(ctx context.Context) error {
	close(l.stop)
	<-l.done
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
