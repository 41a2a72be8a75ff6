package reconciler_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// externalIdentity swaps the example's identity to the organisation's provider, with
// one client declared per consumer whose secret is in the operator's Secret.
var externalIdentity = map[string]string{
	"  components:\n": "  components:\n    identity: external-oidc\n",
	"  values:\n": "  values:\n    external-oidc:\n      issuerURL: https://login.corp.example/realms/staff\n      clients:\n" +
		"        nextcloud: {clientID: corp-nextcloud, clientSecret: {name: corp-oidc, key: nextcloud}}\n" +
		"        synapse: {clientID: corp-synapse, clientSecret: {name: corp-oidc, key: synapse}}\n" +
		"        jitsi: {clientID: corp-jitsi, clientSecret: {name: corp-oidc, key: jitsi}}\n" +
		"        bigbluebutton: {clientID: corp-bbb, clientSecret: {name: corp-oidc, key: bbb}}\n" +
		"        portal: {clientID: corp-portal, clientSecret: {name: corp-oidc, key: portal}}\n" +
		"        stalwart: {clientID: corp-mail, clientSecret: {name: corp-oidc, key: stalwart}}\n",
}

// TestSwapIdentityExternal swaps keycloak for external-oidc and back on the local
// control plane: every consumer is upgraded with the new wiring and ready before
// keycloak is uninstalled (make-before-break); keycloak's generated Secrets (its
// database password, admin password) stay, and so does its database, which the
// PostgreSQL release never drops; releases without identity keep their revision.
// Swapping back reinstalls keycloak and rewires every consumer to it.
func TestSwapIdentityExternal(t *testing.T) {
	e := newEnv(t)
	e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	before := revisions(t, e, "demo")
	if _, ok := before["keycloak"]; !ok {
		t.Fatalf("keycloak not installed: %v", before)
	}
	consumers := []string{"jitsi", "nextcloud", "synapse"}
	for _, optional := range []string{"portal", "stalwart"} {
		if _, ok := before[optional]; ok {
			consumers = append(consumers, optional)
		}
	}
	// The operator's Secret with the secrets the provider issued.
	data := map[string][]byte{}
	for _, k := range []string{"nextcloud", "synapse", "jitsi", "bbb", "portal", "stalwart"} {
		data[k] = []byte("issued-by-the-provider-for-" + k)
	}
	if _, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "corp-oidc"}, Data: data}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	e.events.reset()
	rep := e.reconcile(e.plan(e.workplaceDir(externalIdentity, nil)))
	after := revisions(t, e, "demo")
	if _, ok := after["keycloak"]; ok {
		t.Error("keycloak still installed after the swap")
	}
	gone := e.events.index("demo-keycloak", "uninstall")
	if gone < 0 {
		t.Error("no uninstall of demo-keycloak")
	}
	for _, c := range consumers {
		if after[c] <= before[c] {
			t.Errorf("%s stayed at revision %d: not rewired", c, before[c])
		}
		if ready := e.events.index("demo-"+c, "ready"); ready < 0 || ready > gone {
			t.Errorf("%s ready at event %d, keycloak uninstalled at %d: want the consumer ready first", c, ready, gone)
		}
	}
	for _, untouched := range []string{"collabora", "valkey"} {
		if after[untouched] != before[untouched] {
			t.Errorf("%s went from revision %d to %d; the identity swap must not touch it", untouched, before[untouched], after[untouched])
		}
	}
	e.assertJitsiClient(t, "corp-jitsi", "corp-oidc", "staff")
	for _, s := range []string{"demo-keycloak-admin", "demo-keycloak-db-keycloak"} {
		if _, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Get(t.Context(), s, metav1.GetOptions{}); err != nil {
			t.Errorf("keycloak's Secret %s after the swap: %v", s, err)
		}
	}
	t.Logf("kept volumes %v, deleted %v", rep.KeptVolumes, rep.DeletedVolumes)
	if len(rep.DeletedVolumes) != 0 {
		t.Errorf("dataPolicy Retain, yet volumes were deleted: %v", rep.DeletedVolumes)
	}

	e.events.reset()
	e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	back := revisions(t, e, "demo")
	if _, ok := back["keycloak"]; !ok {
		t.Fatal("keycloak not reinstalled by the swap back")
	}
	for _, c := range consumers {
		if back[c] <= after[c] {
			t.Errorf("%s stayed at revision %d on the swap back: not rewired", c, after[c])
		}
	}
	e.assertJitsiClient(t, "jitsi", "demo-jitsi-oidc", "demo")
}

// assertJitsiClient checks the client id, the Secret of the client secret and the
// realm the Jitsi adapter runs with.
func (e *env) assertJitsiClient(t *testing.T, clientID, secret, realm string) {
	t.Helper()
	d, err := e.cluster.Clientset.AppsV1().Deployments(e.ns).Get(t.Context(), "demo-jitsi-adapter", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]corev1.EnvVar{}
	for _, v := range d.Spec.Template.Spec.Containers[0].Env {
		env[v.Name] = v
	}
	if got := env["KEYCLOAK_CLIENT_ID"].Value; got != clientID {
		t.Errorf("jitsi adapter client id %q, want %q", got, clientID)
	}
	if ref := env["KEYCLOAK_CLIENT_SECRET"].ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != secret {
		t.Errorf("jitsi adapter client secret from %+v, want Secret %s", ref, secret)
	}
	if got := env["KEYCLOAK_REALM"].Value; !strings.EqualFold(got, realm) {
		t.Errorf("jitsi adapter realm %q, want %q", got, realm)
	}
}
