package reconciler_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// occHookEnv returns the environment of the files release's occ hook Job as the
// cluster has it.
func occHookEnv(t *testing.T, e *env) []corev1.EnvVar {
	t.Helper()
	job, err := e.cluster.Clientset.BatchV1().Jobs(e.ns).Get(t.Context(), "demo-nextcloud-occ-config", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("nextcloud's occ hook: %v", err)
	}
	return job.Spec.Template.Spec.Containers[0].Env
}

func envNamed(env []corev1.EnvVar, name string) (corev1.EnvVar, bool) {
	for _, v := range env {
		if v.Name == name {
			return v, true
		}
	}
	return corev1.EnvVar{}, false
}

// TestSwapOffice2EuroOffice: office collabora → eurooffice on the local control
// plane. Euro-Office is installed and ready before Collabora is uninstalled; its
// JWT and WOPI keys and its database password are generated in the cluster; the
// files component's occ hook is upgraded to configure the eurooffice app with a
// reference to the JWT secret; Nextcloud's claim is the same claim throughout.
// Neither office server has a volume, so none is reported kept. Swapping back
// installs Collabora before Euro-Office goes, and the hook configures
// richdocuments again with no JWT reference.
func TestSwapOffice2EuroOffice(t *testing.T) {
	e := newEnv(t)
	e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	claims := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(e.ns)
	ncClaim, err := claims.Get(t.Context(), "demo-nextcloud-data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := revisions(t, e, "demo")
	if _, ok := envNamed(occHookEnv(t, e), "OFFICE_JWT_SECRET"); ok {
		t.Fatal("with collabora the occ hook has a JWT secret")
	}

	swap := map[string]string{"office: collabora ": "office: eurooffice "}
	e.events.reset()
	rep := e.reconcile(e.plan(e.workplaceDir(swap, nil)))
	ready := e.events.index("demo-eurooffice", "ready")
	gone := e.events.index("demo-collabora", "uninstall")
	if ready < 0 || gone < 0 || ready > gone {
		t.Errorf("eurooffice ready at event %d, collabora uninstall at %d: want ready first", ready, gone)
	}
	after := revisions(t, e, "demo")
	if _, ok := after["collabora"]; ok {
		t.Error("collabora still installed")
	}
	if after["nextcloud"] <= before["nextcloud"] {
		t.Errorf("nextcloud stayed at revision %d: its occ hook must follow the office kind", after["nextcloud"])
	}
	for _, untouched := range []string{"keycloak", "synapse", "jitsi", "portal", "valkey"} {
		if after[untouched] != before[untouched] {
			t.Errorf("%s went from revision %d to %d; the office swap must not touch it", untouched, before[untouched], after[untouched])
		}
	}
	if len(rep.KeptVolumes) != 0 {
		t.Errorf("kept volumes %v: collabora has none", rep.KeptVolumes)
	}
	for _, name := range []string{"demo-eurooffice-jwt", "demo-eurooffice-wopi", "demo-eurooffice-db-eurooffice"} {
		if _, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Get(t.Context(), name, metav1.GetOptions{}); err != nil {
			t.Errorf("generated Secret %s: %v", name, err)
		}
	}
	jwt, ok := envNamed(occHookEnv(t, e), "OFFICE_JWT_SECRET")
	if !ok || jwt.ValueFrom == nil || jwt.ValueFrom.SecretKeyRef == nil || jwt.ValueFrom.SecretKeyRef.Name != "demo-eurooffice-jwt" || jwt.Value != "" {
		t.Errorf("occ hook's OFFICE_JWT_SECRET is %+v, want a reference to demo-eurooffice-jwt", jwt)
	}
	if again, err := claims.Get(t.Context(), "demo-nextcloud-data", metav1.GetOptions{}); err != nil || again.UID != ncClaim.UID {
		t.Errorf("nextcloud's claim after the swap: %v (uid %v, was %s)", err, again, ncClaim.UID)
	}

	e.events.reset()
	e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	ready = e.events.index("demo-collabora", "ready")
	gone = e.events.index("demo-eurooffice", "uninstall")
	if ready < 0 || gone < 0 || ready > gone {
		t.Errorf("collabora ready at event %d, eurooffice uninstall at %d: want ready first", ready, gone)
	}
	back := revisions(t, e, "demo")
	if _, ok := back["eurooffice"]; ok {
		t.Error("eurooffice still installed after swapping back")
	}
	if _, ok := envNamed(occHookEnv(t, e), "OFFICE_JWT_SECRET"); ok {
		t.Error("after swapping back the occ hook still has the JWT secret")
	}
	if wopi, _ := envNamed(occHookEnv(t, e), "WOPI_URL"); !strings.HasPrefix(wopi.Value, "https://office.") {
		t.Errorf("after swapping back WOPI_URL is %q", wopi.Value)
	}
	if again, err := claims.Get(t.Context(), "demo-nextcloud-data", metav1.GetOptions{}); err != nil || again.UID != ncClaim.UID {
		t.Errorf("nextcloud's claim after swapping back: %v", err)
	}
}
