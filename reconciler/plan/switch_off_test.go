package plan_test

import (
	"testing"
)

// TestSwitchOffEachApp: switching any application off removes its release and
// changes exactly the releases linked to it, each for a reason of the contract, and
// nothing else:
//   - keycloak: the app's OIDC client goes from the realm;
//   - portal: its tile goes from the page;
//   - postgresql, valkey: its database and Redis access go;
//   - stalwart: its relay stops admitting the app (mail consumers only);
//   - the consumers of the app: Nextcloud's office connector and WOPI admission,
//     Collabora's WOPI host and admission of Nextcloud, Element's video settings,
//     Synapse's and Nextcloud's mail settings.
func TestSwitchOffEachApp(t *testing.T) {
	cases := []struct {
		capability, from, to string
		removed              string
		changed              []string
	}{
		{"chat", "portal: portal ", "portal: portal\n    chat: none ", "demo-synapse",
			[]string{"demo-keycloak", "demo-portal", "demo-postgresql", "demo-stalwart"}},
		{"video", "video: jitsi ", "video: none ", "demo-jitsi",
			[]string{"demo-keycloak", "demo-portal", "demo-synapse"}},
		{"files", "portal: portal ", "portal: portal\n    files: none ", "demo-nextcloud",
			[]string{"demo-collabora", "demo-keycloak", "demo-portal", "demo-postgresql", "demo-stalwart", "demo-valkey"}},
		{"office", "office: collabora ", "office: none ", "demo-collabora",
			[]string{"demo-nextcloud"}},
		{"portal", "portal: portal ", "portal: none ", "demo-portal",
			[]string{"demo-keycloak"}},
		{"mail", "portal: portal ", "portal: portal\n    mail: none ", "demo-stalwart",
			[]string{"demo-keycloak", "demo-nextcloud", "demo-portal", "demo-postgresql", "demo-synapse"}},
	}
	before := renderObjects(t, nil)
	for _, tc := range cases {
		t.Run(tc.capability, func(t *testing.T) {
			after := renderObjects(t, map[string]string{tc.from: tc.to})
			assertSwap(t, before, after, nil, []string{tc.removed}, tc.changed)
		})
	}
}
