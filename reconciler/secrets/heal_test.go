package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

// healEnv reconciles a small workplace (identity and postgres only) on the local
// control plane, recording progress events and mutating requests.
type healEnv struct {
	t       *testing.T
	cluster *kube.Cluster
	rec     *reconciler.Reconciler
	ns      string
	dir     string

	mu     sync.Mutex
	events []release.Event
	writes cluster.Writes
}

func newHealEnv(t *testing.T) *healEnv {
	t.Helper()
	ctrllog.SetLogger(logr.Discard())
	c := cluster.FromTest(t)
	e := &healEnv{t: t, ns: c.NewNamespace(t)}
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath(), WrapConfig: e.writes.Wrap})
	if err != nil {
		t.Fatal(err)
	}
	e.cluster = kc
	e.rec = reconciler.New(kc, release.Options{Progress: func(ev release.Event) {
		e.mu.Lock()
		e.events = append(e.events, ev)
		e.mu.Unlock()
		t.Logf("%-22s %-11s %6.1fs %s", ev.Release, ev.Step, ev.Elapsed.Seconds(), ev.Message)
	}}, "heal-test")
	e.dir = t.TempDir()
	wp := fmt.Sprintf(`apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: %s}
spec:
  domain: 192.168.49.20.sslip.io
  profile: minikube
  components: {chat: none, video: none, files: none, office: none}
`, e.ns)
	if err := os.WriteFile(filepath.Join(e.dir, "workplace.yaml"), []byte(wp), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *healEnv) plan() *plan.Plan {
	e.t.Helper()
	repo, err := load.Dir(e.dir, platzwart.Builtin(), "")
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// reconcile reconciles and fails the test when anything failed; it returns the report
// and the events and writes of this reconcile.
func (e *healEnv) reconcile() (*reconciler.Report, []release.Event, []string) {
	e.t.Helper()
	e.mu.Lock()
	e.events = nil
	e.writes.Reset()
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(e.t.Context(), 5*time.Minute)
	defer cancel()
	rep, err := e.rec.Reconcile(ctx, e.plan())
	if err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
	if rep.Failed() {
		for _, o := range rep.Result.Failed() {
			e.t.Errorf("release %s: %s", o.Release, o.Err)
		}
		e.t.FailNow()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return rep, append([]release.Event(nil), e.events...), e.writes.List()
}

// state is what the test compares across a heal: the provisioning Job's UID and the
// keycloak pod template's secret-versions annotation.
func (e *healEnv) state() (jobUID, annotation string) {
	e.t.Helper()
	job, err := e.cluster.Clientset.BatchV1().Jobs(e.ns).Get(e.t.Context(), "demo-postgresql-provision", metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("the provisioning Job: %v", err)
	}
	dep, err := e.cluster.Clientset.AppsV1().Deployments(e.ns).Get(e.t.Context(), "demo-keycloak", metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("keycloak's Deployment: %v", err)
	}
	return string(job.UID), dep.Spec.Template.Annotations[secrets.AnnotationVersions]
}

func actions(rep *reconciler.Report) map[string]release.Action {
	out := map[string]release.Action{}
	for _, o := range rep.Result.Outcomes {
		out[o.Component] = o.Action
	}
	return out
}

func eventIndex(events []release.Event, rel, step string) int {
	for i, ev := range events {
		if ev.Release == rel && ev.Step == step {
			return i
		}
	}
	return -1
}

// TestDeletedDatabasePasswordHeals deletes keycloak's generated database password
// Secret by hand. The next reconcile generates a new one and, because the releases'
// digests cover the content of the Secrets they reference, upgrades postgresql (its
// provisioning hook Job runs again, a new Job, setting the new password) before
// keycloak, whose pod template annotation changes so its pods roll. The reconcile
// after that is a no-op again.
func TestDeletedDatabasePasswordHeals(t *testing.T) {
	e := newHealEnv(t)
	e.reconcile()
	job0, ann0 := e.state()
	if ann0 == "" {
		t.Fatalf("keycloak's pod template has no %s annotation", secrets.AnnotationVersions)
	}

	secret := contract.DatabasePasswordSecret("demo-keycloak", "keycloak").Name
	if err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Delete(t.Context(), secret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, events, _ := e.reconcile()
	if !strings.Contains(strings.Join(rep.Secrets, ","), secret) {
		t.Errorf("report lists generated secrets %v, want %s", rep.Secrets, secret)
	}
	got := actions(rep)
	if got["postgresql"] != release.ActionUpgrade || got["keycloak"] != release.ActionUpgrade {
		t.Errorf("actions %v, want postgresql and keycloak upgraded", got)
	}
	if got["valkey"] != release.ActionUnchanged {
		t.Errorf("valkey, which does not reference the Secret, was %s", got["valkey"])
	}
	pgReady, kcUpgrade := eventIndex(events, "demo-postgresql", "ready"), eventIndex(events, "demo-keycloak", "upgrade")
	if pgReady < 0 || kcUpgrade < 0 || pgReady > kcUpgrade {
		t.Errorf("postgresql ready at event %d, keycloak upgrade at %d: want the provider first", pgReady, kcUpgrade)
	}
	job1, ann1 := e.state()
	if job1 == job0 {
		t.Error("the provisioning Job did not run again (same UID)")
	}
	if ann1 == ann0 || ann1 == "" {
		t.Errorf("keycloak's pod template annotation %q → %q: want a change so its pods roll", ann0, ann1)
	}

	// Keycloak's version is risky, but this upgrade keeps it: no backup was taken.
	if _, err := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(e.ns).Get(t.Context(), release.BackupClaim("demo"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("an upgrade that keeps every version made the backup claim (err %v)", err)
	}
	for _, o := range rep.Result.Outcomes {
		if len(o.Backups) > 0 {
			t.Errorf("release %s took backups %+v on an upgrade that keeps its version", o.Release, o.Backups)
		}
	}

	rep, _, writes := e.reconcile()
	for c, a := range actions(rep) {
		if a != release.ActionUnchanged {
			t.Errorf("after healing, %s is %s, want unchanged", c, a)
		}
	}
	if len(writes) > 0 {
		t.Errorf("the reconcile after healing wrote: %v", writes)
	}
}

// TestDeletedSuperuserSecretHeals deletes PostgreSQL's superuser Secret by hand. It is
// a component Secret taken up on every start (the chart's init container sets the
// password before the server starts: TestSuperuserPasswordFollowsTheSecret runs that
// script against a real server), so the next reconcile generates a new value, upgrades
// postgresql with a new pod-template annotation (the pod rolls, the init container
// takes the value up) and runs the provisioning Job again, which logs in with it.
func TestDeletedSuperuserSecretHeals(t *testing.T) {
	e := newHealEnv(t)
	e.reconcile()
	job0, _ := e.state()
	sts0 := e.statefulSetAnnotation("demo-postgresql")

	secret := contract.ComponentSecret("demo-postgresql", "admin")
	if err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Delete(t.Context(), secret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, _, _ := e.reconcile()
	if !strings.Contains(strings.Join(rep.Secrets, ","), secret) {
		t.Errorf("report lists generated secrets %v, want %s", rep.Secrets, secret)
	}
	if got := actions(rep)["postgresql"]; got != release.ActionUpgrade {
		t.Errorf("postgresql was %s, want upgraded", got)
	}
	if sts1 := e.statefulSetAnnotation("demo-postgresql"); sts1 == sts0 || sts1 == "" {
		t.Errorf("the StatefulSet's pod template annotation %q → %q: want a change so the pod rolls", sts0, sts1)
	}
	if job1, _ := e.state(); job1 == job0 {
		t.Error("the provisioning Job did not run again (same UID)")
	}
	sts, err := e.cluster.Clientset.AppsV1().StatefulSets(e.ns).Get(t.Context(), "demo-postgresql", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var takesItUp bool
	for _, c := range sts.Spec.Template.Spec.InitContainers {
		for _, env := range c.Env {
			if c.Name == "superuser-password" && env.Name == "POSTGRES_PASSWORD" && env.ValueFrom != nil &&
				env.ValueFrom.SecretKeyRef != nil && env.ValueFrom.SecretKeyRef.Name == secret {
				takesItUp = true
			}
		}
	}
	if !takesItUp {
		t.Errorf("no init container superuser-password reads POSTGRES_PASSWORD from %s", secret)
	}
}

// TestLostBootstrapSecretIsRefusedWritingNothing deletes Keycloak's bootstrap admin
// Secret by hand. Keycloak read it only when it first started (catalog takenUp:
// firstStart), so a new value would lock platzwart's configuration Job out: the
// reconcile is refused with a *secrets.LostError naming the Secret, and nothing is
// written (no new Secret, no release changed). Once the operator restores the Secret
// (by hand, without platzwart's labels), the next reconcile goes on.
func TestLostBootstrapSecretIsRefusedWritingNothing(t *testing.T) {
	e := newHealEnv(t)
	e.reconcile()
	secret := contract.ComponentSecret("demo-keycloak", "admin")
	saved, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Get(t.Context(), secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Delete(t.Context(), secret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	e.writes.Reset()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	_, err = e.rec.Reconcile(ctx, e.plan())
	var lost *secrets.LostError
	if !errors.As(err, &lost) {
		t.Fatalf("reconcile: %v, want a *secrets.LostError", err)
	}
	if len(lost.Lost) != 1 || lost.Lost[0].Secret != secret || lost.Lost[0].Component != "keycloak" {
		t.Errorf("lost %+v, want only %s of keycloak", lost.Lost, secret)
	}
	if !strings.Contains(err.Error(), "nothing was applied") || !strings.Contains(err.Error(), "Restore the Secret") {
		t.Errorf("the error does not say what happened and what to do: %v", err)
	}
	if w := e.writes.List(); len(w) > 0 {
		t.Errorf("the refused reconcile wrote: %v", w)
	}
	if _, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Get(t.Context(), secret, metav1.GetOptions{}); err == nil {
		t.Errorf("Secret %s was generated again", secret)
	}

	// Restored from a backup, as an operator would: data only.
	restored := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secret, Namespace: e.ns}, Data: saved.Data}
	if _, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Create(t.Context(), restored, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.reconcile()
}

// statefulSetAnnotation returns the secret-versions annotation of a StatefulSet's pod
// template.
func (e *healEnv) statefulSetAnnotation(name string) string {
	e.t.Helper()
	sts, err := e.cluster.Clientset.AppsV1().StatefulSets(e.ns).Get(e.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("StatefulSet %s: %v", name, err)
	}
	return sts.Spec.Template.Annotations[secrets.AnnotationVersions]
}
