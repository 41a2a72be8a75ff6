package plan_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// meetGolden is the La Suite Meet release of the example workplace with video: meet,
// object by object. Regenerate only on purpose: PLATZWART_UPDATE_GOLDEN=1.
const meetGolden = "testdata/meet/meet.golden"

var toMeet = map[string]string{"video: jitsi ": "video: meet "}

// TestSwapVideoMeet: jitsi ⇄ meet replaces the video release and changes exactly its
// consumers' wiring: the identity provider's clients (meet's instead of jitsi's), the
// portal's video tile, the PostgreSQL release (meet's database), Valkey (which admits
// the meet release), and in the chat release only Element's config (no Jitsi to offer
// for calls); files, office and mail stay byte-identical. Swapping back restores the
// Jitsi render byte for byte.
func TestSwapVideoMeet(t *testing.T) {
	jitsi := renderObjects(t, nil)
	meet := renderObjects(t, toMeet)
	changed := assertSwap(t, jitsi, meet,
		[]string{"demo-meet"}, []string{"demo-jitsi"},
		[]string{"demo-keycloak", "demo-portal", "demo-postgresql", "demo-synapse", "demo-valkey"})
	if got := strings.Join(changed["demo-synapse"], ","); got != "ConfigMap/demo-synapse-element-config,Deployment/demo-synapse-element" {
		t.Errorf("chat release objects changed by the video swap: %s", got)
	}
	if cfg := meet["demo-synapse"]["ConfigMap/demo-synapse-element-config"]; strings.Contains(cfg, "preferred_domain") {
		t.Errorf("Element still offers Jitsi for calls with video: meet:\n%s", cfg)
	}
	if np := meet["demo-valkey"]["NetworkPolicy/demo-valkey"]; !strings.Contains(np, "demo-meet") || strings.Contains(np, "demo-jitsi") {
		t.Errorf("Valkey's NetworkPolicy does not admit the meet release:\n%s", np)
	}
	back := renderObjects(t, nil)
	if a, r, c := changes(jitsi, back); len(a)+len(r)+len(c) != 0 {
		t.Errorf("swapping back does not restore the render: added %v removed %v changed %v", a, r, c)
	}
}

// TestSwapVideoBigBlueButtonMeet: bigbluebutton ⇄ meet, two products on PostgreSQL
// and Redis: the identity clients, the portal's tile, the database and Valkey's
// admitted release change; the chat release does not (Element offers Jitsi only).
func TestSwapVideoBigBlueButtonMeet(t *testing.T) {
	bbb := renderObjects(t, map[string]string{"video: jitsi ": "video: bigbluebutton "})
	meet := renderObjects(t, toMeet)
	assertSwap(t, bbb, meet,
		[]string{"demo-meet"}, []string{"demo-bigbluebutton"},
		[]string{"demo-keycloak", "demo-portal", "demo-postgresql", "demo-valkey"})
	assertSwap(t, meet, bbb,
		[]string{"demo-bigbluebutton"}, []string{"demo-meet"},
		[]string{"demo-keycloak", "demo-portal", "demo-postgresql", "demo-valkey"})
}

// TestMeetWiring: the plan registers meet's OIDC client with its callback and logout
// callback, gives it its database, moves the Video tile, and the release renders as
// the golden file says.
func TestMeetWiring(t *testing.T) {
	const d = "192.168.49.2.sslip.io"
	p := planExample(t, toMeet)
	if p.Identity == nil {
		t.Fatal("no identity in the plan")
	}
	var found bool
	for _, c := range p.Identity.Clients {
		switch c.Component {
		case "jitsi":
			t.Error("the jitsi client is still registered after the swap")
		case "meet":
			found = true
			if c.ClientID != "meet" || c.Secret == nil || c.Secret.Name != "demo-meet-oidc" {
				t.Errorf("meet client %q secret %+v, want client meet with Secret demo-meet-oidc", c.ClientID, c.Secret)
			}
			if want := "https://meet." + d + "/api/v1.0/callback/"; !slices.Contains(c.RedirectURIs, want) {
				t.Errorf("meet redirect URIs %v lack %s", c.RedirectURIs, want)
			}
			if want := "https://meet." + d + "/api/v1.0/logout-callback/"; !slices.Contains(c.PostLogoutRedirectURIs, want) {
				t.Errorf("meet post-logout redirect URIs %v lack %s", c.PostLogoutRedirectURIs, want)
			}
		}
	}
	if !found {
		t.Error("no OIDC client registered for meet")
	}
	if got := tiles(p); !slices.Contains(got, "Video meet https://meet."+d+"/") {
		t.Errorf("tiles %v lack meet's Video tile", got)
	}
	objs := renderObjects(t, toMeet)["demo-meet"]
	backend := objs["Deployment/demo-meet-backend"]
	for _, want := range []string{
		`name: "demo-meet-db-meet"`, // database password from the postgres contract
		`name: "demo-valkey-auth"`,  // redis password from the redis contract
		`value: "https://id.` + d + `/realms/demo/protocol/openid-connect/auth"`,
		`value: "https://livekit.` + d + `"`,
		`name: "demo-meet-livekit"`,
	} {
		if !strings.Contains(backend, want) {
			t.Errorf("meet backend lacks %s", want)
		}
	}
	got := joinObjects(objs)
	if os.Getenv("PLATZWART_UPDATE_GOLDEN") == "1" {
		if err := os.MkdirAll(filepath.Dir(filepath.FromSlash(meetGolden)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.FromSlash(meetGolden), []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(filepath.FromSlash(meetGolden))
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the meet release changed; diff against %s (PLATZWART_UPDATE_GOLDEN=1 on purpose)", meetGolden)
	}
}
