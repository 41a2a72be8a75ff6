package reconciler_test

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// meetSwap is the example's swap to La Suite Meet, with LiveKit's media NodePorts
// given per test (NodePorts are cluster-wide, like the JVB's in workplaceDir).
func (e *env) meetSwap() map[string]string {
	udp := 32600 + 2*int(nextPort.Add(1)%80)
	return map[string]string{
		"video: jitsi ": "video: meet ",
		"  values:\n":   fmt.Sprintf("  values:\n    meet: {livekit: {udpPort: %d, tcpPort: %d}}\n", udp, udp+1),
	}
}

// meetSecrets are the Secrets platzwart generates for the meet release: its database
// password, Django's key, LiveKit's key pair and its OIDC client secret.
var meetSecrets = []string{"demo-meet-db-meet", "demo-meet-django", "demo-meet-livekit", "demo-meet-oidc"}

// TestSwapMeetMakeBeforeBreak swaps the example's video from Jitsi to La Suite Meet
// and back, then to Meet again, on the local control plane. Each swap installs the new
// release and upgrades its consumers, all ready before the old release is uninstalled
// (make-before-break): Keycloak's realm registers meet's client instead of jitsi's,
// the portal moves its tile, Element drops Jitsi, PostgreSQL provisions meet's
// database and Valkey admits the meet release; files and office keep their revision.
// Neither Jitsi nor Meet keeps a volume (Meet's state is its PostgreSQL database), so
// nothing is deleted; what Meet leaves behind, its generated Secrets (the database
// password above all, which its database is owned with), stays through the swap back
// and is taken up again, the same objects, by the second swap to Meet.
func TestSwapMeetMakeBeforeBreak(t *testing.T) {
	e := newEnv(t)
	e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	before := revisions(t, e, "demo")
	swap := e.meetSwap()

	e.events.reset()
	rep := e.reconcile(e.plan(e.workplaceDir(swap, nil)))
	after := revisions(t, e, "demo")
	if _, ok := after["jitsi"]; ok {
		t.Error("jitsi still installed after the swap to meet")
	}
	gone := e.events.index("demo-jitsi", "uninstall")
	if ready := e.events.index("demo-meet", "ready"); ready < 0 || gone < 0 || ready > gone {
		t.Errorf("meet ready at event %d, jitsi uninstalled at %d: want ready first", ready, gone)
	}
	for _, c := range []string{"keycloak", "portal", "synapse", "postgresql", "valkey"} {
		if after[c] <= before[c] {
			t.Errorf("%s stayed at revision %d: not rewired for meet", c, before[c])
		}
		if ready := e.events.index("demo-"+c, "ready"); ready < 0 || ready > gone {
			t.Errorf("%s ready at event %d, jitsi uninstalled at %d: want the consumer ready first", c, ready, gone)
		}
	}
	for _, untouched := range []string{"nextcloud", "collabora"} {
		if after[untouched] != before[untouched] {
			t.Errorf("%s went from revision %d to %d; the video swap must not touch it", untouched, before[untouched], after[untouched])
		}
	}
	if len(rep.DeletedVolumes) != 0 || len(rep.KeptVolumes) != 0 {
		t.Errorf("jitsi has no claims, yet the swap kept %v and deleted %v", rep.KeptVolumes, rep.DeletedVolumes)
	}
	e.assertRealmClients(t, "meet", "jitsi")
	uids := e.secretUIDs(t, meetSecrets)

	e.events.reset()
	e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	back := revisions(t, e, "demo")
	if _, ok := back["meet"]; ok {
		t.Error("meet still installed after the swap back")
	}
	gone = e.events.index("demo-meet", "uninstall")
	if ready := e.events.index("demo-jitsi", "ready"); ready < 0 || gone < 0 || ready > gone {
		t.Errorf("jitsi ready at event %d, meet uninstalled at %d: want ready first", ready, gone)
	}
	for _, c := range []string{"keycloak", "portal", "synapse"} {
		if back[c] <= after[c] {
			t.Errorf("%s stayed at revision %d on the swap back: not rewired", c, after[c])
		}
	}
	e.assertRealmClients(t, "jitsi", "meet")
	kept := e.secretUIDs(t, meetSecrets)
	for name, uid := range uids {
		if kept[name] != uid {
			t.Errorf("meet's Secret %s was replaced or removed by the swap back (uid %s → %q)", name, uid, kept[name])
		}
	}

	e.reconcile(e.plan(e.workplaceDir(swap, nil)))
	again := e.secretUIDs(t, meetSecrets)
	for name, uid := range uids {
		if again[name] != uid {
			t.Errorf("the second swap to meet replaced its Secret %s (uid %s → %s): the database would refuse the new password", name, uid, again[name])
		}
	}
	e.assertRealmClients(t, "meet", "jitsi")
}

// assertRealmClients checks Keycloak's rendered realm in the cluster: it registers the
// client of want (with meet's callback when want is meet) and not the client of gone.
func (e *env) assertRealmClients(t *testing.T, want, gone string) {
	t.Helper()
	cm, err := e.cluster.Clientset.CoreV1().ConfigMaps(e.ns).Get(t.Context(), "demo-keycloak-realm", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var realm strings.Builder
	for _, v := range cm.Data {
		realm.WriteString(v)
	}
	s := realm.String()
	has := func(id string) bool {
		return strings.Contains(s, `"clientId": "`+id+`"`) || strings.Contains(s, `"clientId":"`+id+`"`)
	}
	if !has(want) {
		t.Errorf("Keycloak's realm registers no client %q", want)
	}
	if has(gone) {
		t.Errorf("Keycloak's realm still registers client %q", gone)
	}
	if want == "meet" && !strings.Contains(s, "/api/v1.0/callback/") {
		t.Error("Keycloak's realm lacks meet's redirect URI /api/v1.0/callback/")
	}
}

// secretUIDs returns the UIDs of the named Secrets ("" when one is missing).
func (e *env) secretUIDs(t *testing.T, names []string) map[string]types.UID {
	t.Helper()
	out := map[string]types.UID{}
	for _, n := range names {
		s, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Get(t.Context(), n, metav1.GetOptions{})
		if err != nil {
			t.Errorf("Secret %s: %v", n, err)
			continue
		}
		out[n] = s.UID
	}
	return out
}
