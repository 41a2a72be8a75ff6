package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

// TestRotateRollsOutANewDatabasePassword applies a small workplace (identity and
// postgres), then rotates keycloak's database password with `platzwart rotate`: the
// Secret has a new value and says why and when, an Event says which keys were rotated
// and why, the output names the Secret but never a value, the postgresql provisioning
// Job ran again (a new Job) and keycloak's pod template changed so its pods roll. A
// Secret not made by platzwart is refused.
func TestRotateRollsOutANewDatabasePassword(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientset(t, c)
	ns := c.NewNamespace(t)
	dir := t.TempDir()
	wp := fmt.Sprintf(`apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: %s}
spec:
  domain: 192.168.49.30.sslip.io
  profile: minikube
  components: {chat: none, video: none, files: none, office: none}
`, ns)
	if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(wp), 0o644); err != nil {
		t.Fatal(err)
	}
	kc := []string{"--kubeconfig", c.KubeconfigPath()}
	if out, errOut, err := runCLI(t, append([]string{"apply", dir}, kc...)...); err != nil {
		t.Fatalf("apply: %v\n%s\n%s", err, out, errOut)
	}
	const secret = "demo-keycloak-db-keycloak"
	before, err := cs.CoreV1().Secrets(ns).Get(t.Context(), secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job0, err := cs.BatchV1().Jobs(ns).Get(t.Context(), "demo-postgresql-provision", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep0, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "demo-keycloak", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	out, errOut, err := runCLI(t, append([]string{"rotate", dir, "--component", "keycloak", "--secret", secret, "--reason", "test rotation"}, kc...)...)
	if err != nil {
		t.Fatalf("rotate: %v\n%s\n%s", err, out, errOut)
	}
	t.Logf("platzwart rotate:\n%s%s", errOut, out)
	if want := fmt.Sprintf("rotated secret %s/%s (component keycloak, keys password): test rotation", ns, secret); !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	after, err := cs.CoreV1().Secrets(ns).Get(t.Context(), secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldPw, newPw := string(before.Data["password"]), string(after.Data["password"])
	if newPw == "" || newPw == oldPw {
		t.Fatal("the password was not replaced")
	}
	if strings.Contains(out+errOut, oldPw) || strings.Contains(out+errOut, newPw) {
		t.Error("rotate printed a secret value")
	}
	if after.Annotations[secrets.AnnotationRotationReason] != "test rotation" || after.Annotations[secrets.AnnotationRotatedAt] == "" {
		t.Errorf("Secret annotations %v: want the reason and the time of the rotation", after.Annotations)
	}
	events, err := cs.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + secret})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events.Items, func(e corev1.Event) bool {
		return e.Reason == secrets.EventReasonRotated && strings.Contains(e.Message, "test rotation") && strings.Contains(e.Message, "password")
	}) {
		t.Errorf("no %s Event on %s saying what and why: %+v", secrets.EventReasonRotated, secret, events.Items)
	}
	job1, err := cs.BatchV1().Jobs(ns).Get(t.Context(), "demo-postgresql-provision", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if job1.UID == job0.UID {
		t.Error("the provisioning Job did not run again")
	}
	dep1, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "demo-keycloak", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a0, a1 := dep0.Spec.Template.Annotations[secrets.AnnotationVersions], dep1.Spec.Template.Annotations[secrets.AnnotationVersions]
	if a0 == "" || a0 == a1 {
		t.Errorf("keycloak's pod template annotation %q → %q: want a change so its pods roll", a0, a1)
	}

	// A component's own Secret (Keycloak's bootstrap admin password) is refused
	// without --force, and nothing is changed.
	admin0, err := cs.CoreV1().Secrets(ns).Get(t.Context(), "demo-keycloak-admin", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, append([]string{"rotate", dir, "--component", "keycloak", "--secret", "demo-keycloak-admin"}, kc...)...)
	if err == nil || !strings.Contains(err.Error(), "lock the component out") {
		t.Errorf("rotating keycloak's admin password without --force: %v, want a refusal", err)
	}
	admin1, err := cs.CoreV1().Secrets(ns).Get(t.Context(), "demo-keycloak-admin", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if admin1.ResourceVersion != admin0.ResourceVersion {
		t.Error("a refused rotation changed keycloak's admin Secret")
	}

	// A Secret made by hand is never rotated.
	hand := after.DeepCopy()
	delete(hand.Annotations, secrets.AnnotationGenerated)
	if _, err := cs.CoreV1().Secrets(ns).Update(t.Context(), hand, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, append([]string{"rotate", dir, "--component", "keycloak", "--secret", secret}, kc...)...)
	if err == nil || !strings.Contains(err.Error(), "not generated by platzwart") {
		t.Errorf("rotating a hand-made Secret: %v, want a refusal", err)
	}
	kept, err := cs.CoreV1().Secrets(ns).Get(t.Context(), secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(kept.Data["password"]) != newPw {
		t.Error("a refused rotation changed the Secret")
	}
}
