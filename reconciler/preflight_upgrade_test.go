package reconciler_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestUpgradeChangingAPortPassesPreflight: an upgrade that renames a list entry (the
// JVB's UDP port, a list keyed by port number) passes the preflight, because its dry
// run sends the patch Helm's upgrade sends. A server-side apply under the preflight's
// own field manager kept Helm's old entry and refused the change as a duplicate
// port name.
func TestUpgradeChangingAPortPassesPreflight(t *testing.T) {
	e := newEnv(t)
	e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	before := revisions(t, e, "demo")
	old := e.jvbPort
	e.jvbPort = old + 500
	rep, err := e.rec.Reconcile(t.Context(), e.plan(e.workplaceDir(nil, nil)))
	if err != nil || rep.Failed() {
		t.Fatalf("upgrade with a new JVB port %d → %d: %v", old, e.jvbPort, err)
	}
	after := revisions(t, e, "demo")
	if after["jitsi"] != before["jitsi"]+1 {
		t.Errorf("jitsi revisions %d → %d, want one upgrade", before["jitsi"], after["jitsi"])
	}
	svc, err := e.cluster.Clientset.CoreV1().Services(e.ns).Get(t.Context(), "demo-jitsi-jvb", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].NodePort != int32(e.jvbPort) {
		t.Errorf("JVB Service ports after the upgrade: %+v, want one port %d", svc.Spec.Ports, e.jvbPort)
	}
}
