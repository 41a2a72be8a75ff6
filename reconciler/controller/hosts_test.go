package controller_test

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/controller"
)

// TestTwoNewWorkplacesOneDomain creates two Workplaces with one domain in two
// namespaces at the same moment, with a controller reconciling two Workplaces at
// once. Neither has routes in the cluster yet, so the preflight alone (which compares
// with existing Ingresses and HTTPRoutes) would let both install. The controller's
// host claims let exactly one through; the other is refused with reason
// HostCollision naming both Workplaces, and nothing of it is in its namespace: no
// Ingress, no Helm release.
func TestTwoNewWorkplacesOneDomain(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns1, ns2 := c.NewNamespace(t), c.NewNamespace(t)
	startController(t, c, controller.Options{Name: "hosts", Interval: time.Hour, Concurrency: 2, Selector: testSelector(t, ns1)})
	cl := workplaceClient(t, c)
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	domain := ns1 + ".example.org"
	for _, ns := range []string{ns1, ns2} {
		w := &v1alpha1.Workplace{
			ObjectMeta: metav1.ObjectMeta{Name: "office", Namespace: ns, Labels: map[string]string{"platzwart.io/test": ns1}},
			Spec:       v1alpha1.WorkplaceSpec{Domain: domain, Profile: "minikube", Components: map[string]string{"video": "none", "office": "none", "chat": "none", "files": "none"}},
		}
		if err := cl.Create(t.Context(), w); err != nil {
			t.Fatal(err)
		}
	}
	settled := func(w *v1alpha1.Workplace) bool {
		r := meta.FindStatusCondition(w.Status.Conditions, "Ready")
		return r != nil && r.ObservedGeneration == w.Generation && r.Status != metav1.ConditionUnknown
	}
	w1 := waitWorkplace(t, cl, ns1, "office", "settled", 5*time.Minute, settled)
	w2 := waitWorkplace(t, cl, ns2, "office", "settled", 5*time.Minute, settled)
	ready := func(w *v1alpha1.Workplace) bool { return meta.IsStatusConditionTrue(w.Status.Conditions, "Ready") }
	if ready(w1) == ready(w2) {
		t.Fatalf("Ready %v and %v: want exactly one of two Workplaces with one domain", ready(w1), ready(w2))
	}
	loser := w2
	if ready(w2) {
		loser = w1
	}
	cond := meta.FindStatusCondition(loser.Status.Conditions, "Ready")
	// The loser is refused by the claims while the winner is in flight, or by the
	// preflight if the winner's Ingresses were there first; both name the two.
	if !strings.Contains(cond.Message, ns1+"/office") || !strings.Contains(cond.Message, ns2+"/office") {
		t.Errorf("the refused Workplace's message does not name both claimants: %s: %s", cond.Reason, cond.Message)
	}
	if cond.Reason != "HostCollision" {
		t.Logf("refused by %s (not the controller's claims): %s", cond.Reason, cond.Message)
	}
	ings, err := cs.NetworkingV1().Ingresses(loser.Namespace).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ings.Items) > 0 {
		t.Errorf("the refused Workplace's namespace has %d Ingresses", len(ings.Items))
	}
	rels, err := cs.CoreV1().Secrets(loser.Namespace).List(t.Context(), metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rels.Items) > 0 {
		t.Errorf("the refused Workplace's namespace has %d Helm release records", len(rels.Items))
	}
}
