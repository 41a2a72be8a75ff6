package reconciler_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// toOpenCloud selects OpenCloud as the example's files component.
var toOpenCloud = map[string]string{"office: collabora ": "office: collabora\n    files: opencloud "}

// realmClients returns the identity provider's clients as the cluster has them in
// the realm ConfigMap keycloak-config-cli imports, by client id.
func realmClients(t *testing.T, e *env) map[string]map[string]any {
	t.Helper()
	cm, err := e.cluster.Clientset.CoreV1().ConfigMaps(e.ns).Get(t.Context(), "demo-keycloak-realm", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var realm struct {
		Clients []map[string]any `json:"clients"`
	}
	if err := json.Unmarshal([]byte(cm.Data["realm.json"]), &realm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, c := range realm.Clients {
		id, _ := c["clientId"].(string)
		out[id] = c
	}
	return out
}

// claimUID returns the UID of a claim, "" when there is none.
func claimUID(t *testing.T, e *env, name string) string {
	t.Helper()
	pvc, err := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(e.ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return string(pvc.UID)
}

// configMapData returns a ConfigMap's data joined, "" when there is none.
func configMapData(t *testing.T, e *env, name string) string {
	t.Helper()
	cm, err := e.cluster.Clientset.CoreV1().ConfigMaps(e.ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, v := range cm.Data {
		b.WriteString(v)
	}
	return b.String()
}

// TestSwapOpenCloudMakeBeforeBreak: files nextcloud → opencloud on the local
// control plane. The identity provider gets OpenCloud's public client before
// OpenCloud installs; OpenCloud is ready before Nextcloud is uninstalled;
// Nextcloud's claim is kept and reported; Collabora admits the new WOPI caller,
// the portal's tile follows; chat and video are not touched. Swapping back
// installs Nextcloud before OpenCloud goes, adopts Nextcloud's kept claim (same
// UID) and keeps OpenCloud's.
func TestSwapOpenCloudMakeBeforeBreak(t *testing.T) {
	e := newEnv(t)
	e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	before := revisions(t, e, "demo")
	ncClaim := claimUID(t, e, "demo-nextcloud-data")
	if ncClaim == "" {
		t.Fatal("nextcloud has no claim")
	}

	e.events.reset()
	rep := e.reconcile(e.plan(e.workplaceDir(toOpenCloud, nil)))
	clientReady := e.events.index("demo-keycloak", "ready")
	ready := e.events.index("demo-opencloud", "ready")
	gone := e.events.index("demo-nextcloud", "uninstall")
	if ready < 0 || gone < 0 || ready > gone {
		t.Errorf("opencloud ready at event %d, nextcloud uninstall at %d: want ready first", ready, gone)
	}
	if clientReady < 0 || clientReady > ready {
		t.Errorf("keycloak (the new client) ready at event %d, opencloud at %d: want the client first", clientReady, ready)
	}
	after := revisions(t, e, "demo")
	if _, ok := after["nextcloud"]; ok {
		t.Error("nextcloud still installed")
	}
	// Consumers and providers rewired: the client, the WOPI caller, the tile, and
	// Nextcloud's database and Redis access gone.
	for _, c := range []string{"keycloak", "collabora", "portal", "postgresql", "valkey"} {
		if after[c] <= before[c] {
			t.Errorf("%s stayed at revision %d: not rewired", c, before[c])
		}
	}
	for _, untouched := range []string{"synapse", "jitsi"} {
		if after[untouched] != before[untouched] {
			t.Errorf("%s went from revision %d to %d; the files swap must not touch it", untouched, before[untouched], after[untouched])
		}
	}
	if want := e.ns + "/demo-nextcloud-data"; !slices.Contains(rep.KeptVolumes, want) {
		t.Errorf("kept volumes %v, want %s", rep.KeptVolumes, want)
	}
	if got := claimUID(t, e, "demo-nextcloud-data"); got != ncClaim {
		t.Errorf("nextcloud's claim after the swap: uid %q, was %s", got, ncClaim)
	}
	ocClaim := claimUID(t, e, "demo-opencloud-data")
	if ocClaim == "" {
		t.Fatal("opencloud has no claim")
	}
	clients := realmClients(t, e)
	if _, ok := clients["nextcloud"]; ok {
		t.Error("the realm still has the nextcloud client")
	}
	if c := clients["opencloud"]; c == nil || c["publicClient"] != true {
		t.Errorf("the realm's opencloud client %v, want a public client", c)
	}
	if _, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Get(t.Context(), "demo-opencloud-admin", metav1.GetOptions{}); err != nil {
		t.Errorf("generated admin Secret: %v", err)
	}
	if _, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Get(t.Context(), "demo-opencloud-oidc", metav1.GetOptions{}); err == nil {
		t.Error("a client secret was generated for OpenCloud's public client")
	}
	np, err := e.cluster.Clientset.NetworkingV1().NetworkPolicies(e.ns).Get(t.Context(), "demo-collabora", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := np.String(); !strings.Contains(s, "demo-opencloud") || strings.Contains(s, "demo-nextcloud") {
		t.Errorf("collabora's NetworkPolicy does not admit exactly OpenCloud: %s", s)
	}
	if page := configMapData(t, e, "demo-portal"); !strings.Contains(page, "(OpenCloud)") || strings.Contains(page, "(Nextcloud)") {
		t.Error("the portal page does not show the OpenCloud tile only")
	}

	e.events.reset()
	rep = e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	ready = e.events.index("demo-nextcloud", "ready")
	gone = e.events.index("demo-opencloud", "uninstall")
	if ready < 0 || gone < 0 || ready > gone {
		t.Errorf("nextcloud ready at event %d, opencloud uninstall at %d: want ready first", ready, gone)
	}
	back := revisions(t, e, "demo")
	if _, ok := back["opencloud"]; ok {
		t.Error("opencloud still installed after swapping back")
	}
	if got := claimUID(t, e, "demo-nextcloud-data"); got != ncClaim {
		t.Errorf("nextcloud did not adopt its kept claim: uid %q, was %s", got, ncClaim)
	}
	if want := e.ns + "/demo-opencloud-data"; !slices.Contains(rep.KeptVolumes, want) {
		t.Errorf("kept volumes %v, want %s", rep.KeptVolumes, want)
	}
	if got := claimUID(t, e, "demo-opencloud-data"); got != ocClaim {
		t.Errorf("opencloud's claim after swapping back: uid %q, was %s", got, ocClaim)
	}
	clients = realmClients(t, e)
	if _, ok := clients["opencloud"]; ok {
		t.Error("the realm still has the opencloud client after swapping back")
	}
	if c := clients["nextcloud"]; c == nil || c["publicClient"] == true {
		t.Errorf("the realm's nextcloud client %v, want a confidential client", c)
	}

	// Swapping to OpenCloud again adopts its kept claim.
	e.reconcile(e.plan(e.workplaceDir(toOpenCloud, nil)))
	if got := claimUID(t, e, "demo-opencloud-data"); got != ocClaim {
		t.Errorf("opencloud did not adopt its kept claim: uid %q, was %s", got, ocClaim)
	}
}
