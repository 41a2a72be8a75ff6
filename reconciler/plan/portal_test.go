package plan_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/platzwart/platzwart/reconciler/plan"
)

// planExample plans the example with text replacements (see renderObjects).
func planExample(t *testing.T, replace map[string]string) *plan.Plan {
	t.Helper()
	s := readExample(t)
	for from, to := range replace {
		if !strings.Contains(s, from) {
			t.Fatalf("example has no %q", from)
		}
		s = strings.Replace(s, from, to, 1)
	}
	plans, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": s}))
	if err != nil {
		t.Fatal(err)
	}
	return plans[0]
}

// tiles lists a plan's apps as "name component url".
func tiles(p *plan.Plan) []string {
	var out []string
	for _, a := range p.Apps {
		out = append(out, fmt.Sprintf("%s %s %s", a.Name, a.Component, a.URL))
	}
	return out
}

// TestAppsAreTheSelectedTiles: .Apps lists exactly the selected components with a
// tile, sorted by name, with the URL of the tile's host and path (Keycloak's account
// console of the workplace's realm), each with its icon; a swap moves the tile, a
// component switched off takes its tile away.
func TestAppsAreTheSelectedTiles(t *testing.T) {
	const d = "192.168.49.2.sslip.io"
	cases := []struct {
		name    string
		replace map[string]string
		want    []string
	}{
		{"example", nil, []string{
			"Account keycloak https://id." + d + "/realms/demo/account/",
			"Chat synapse https://chat." + d + "/",
			"Files nextcloud https://files." + d + "/",
			"Mail stalwart https://webmail." + d + "/",
			"Video jitsi https://meet." + d + "/",
		}},
		{"video bigbluebutton", map[string]string{"video: jitsi ": "video: bigbluebutton "}, []string{
			"Account keycloak https://id." + d + "/realms/demo/account/",
			"Chat synapse https://chat." + d + "/",
			"Files nextcloud https://files." + d + "/",
			"Mail stalwart https://webmail." + d + "/",
			"Video bigbluebutton https://meet." + d + "/",
		}},
		{"files and chat off", map[string]string{"office: collabora ": "office: none\n    files: none\n    chat: none "}, []string{
			"Account keycloak https://id." + d + "/realms/demo/account/",
			"Mail stalwart https://webmail." + d + "/",
			"Video jitsi https://meet." + d + "/",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := planExample(t, tc.replace)
			if got := strings.Join(tiles(p), "\n"); got != strings.Join(tc.want, "\n") {
				t.Errorf("apps:\n%s\nwant:\n%s", got, strings.Join(tc.want, "\n"))
			}
			for _, a := range p.Apps {
				if !strings.HasPrefix(a.Icon, "data:image/svg+xml;base64,") {
					t.Errorf("app %s: icon %.40q, want an SVG data: URI", a.Component, a.Icon)
				}
			}
			// The portal's values carry exactly these tiles, in order.
			var portal *plan.Release
			for _, r := range p.Releases {
				if r.Component == "portal" {
					portal = r
				}
			}
			if portal == nil {
				t.Fatal("no portal release")
			}
			apps, _ := portal.Values["apps"].([]any)
			if len(apps) != len(p.Apps) {
				t.Fatalf("portal values list %d apps, the plan %d", len(apps), len(p.Apps))
			}
			for i, a := range apps {
				m, _ := a.(map[string]any)
				if m["url"] != p.Apps[i].URL || m["name"] != p.Apps[i].Name || m["icon"] != p.Apps[i].Icon {
					t.Errorf("portal values app %d = %v, want %+v", i, m, p.Apps[i])
				}
			}
		})
	}
}

// TestSwapVideoMovesThePortalTile: in the portal release, the video swap changes the
// page (the tile's text and icon; its URL stays meet.<domain>) and the Deployment's
// checksum of it, nothing else.
func TestSwapVideoMovesThePortalTile(t *testing.T) {
	jitsi := renderObjects(t, nil)
	bbb := renderObjects(t, map[string]string{"video: jitsi ": "video: bigbluebutton "})
	_, _, changed := changes(jitsi, bbb)
	if got := strings.Join(changed["demo-portal"], ","); got != "ConfigMap/demo-portal,Deployment/demo-portal" {
		t.Fatalf("portal objects changed by the video swap: %s", got)
	}
	before, after := jitsi["demo-portal"]["ConfigMap/demo-portal"], bbb["demo-portal"]["ConfigMap/demo-portal"]
	if !strings.Contains(before, "Video conferences (Jitsi Meet)") || strings.Contains(before, "BigBlueButton") {
		t.Errorf("before the swap the page should list Jitsi only")
	}
	if !strings.Contains(after, "Video conferences (BigBlueButton)") || strings.Contains(after, "Jitsi") {
		t.Errorf("after the swap the page should list BigBlueButton only")
	}
	dep := lineDiffOf(jitsi["demo-portal"]["Deployment/demo-portal"], bbb["demo-portal"]["Deployment/demo-portal"])
	if len(dep) != 2 || !strings.Contains(dep[0], "checksum/config") || !strings.Contains(dep[1], "checksum/config") {
		t.Errorf("the portal Deployment changed in more than its checksum: %v", dep)
	}
}

// TestSwapFilesOffRemovesItsTile: files nextcloud → none removes Nextcloud, its
// identity client, its database and Redis access, Collabora's WOPI host, the mail
// relay's admission of it and its portal tile; chat, video and the rest stay
// byte-identical.
func TestSwapFilesOffRemovesItsTile(t *testing.T) {
	before := renderObjects(t, nil)
	after := renderObjects(t, map[string]string{"office: collabora ": "office: collabora\n    files: none "})
	assertSwap(t, before, after, nil, []string{"demo-nextcloud"},
		[]string{"demo-collabora", "demo-keycloak", "demo-portal", "demo-postgresql", "demo-stalwart", "demo-valkey"})
	page := after["demo-portal"]["ConfigMap/demo-portal"]
	if strings.Contains(page, "files.") || !strings.Contains(before["demo-portal"]["ConfigMap/demo-portal"], "https://files.") {
		t.Errorf("the Files tile should be on the page before and gone after")
	}
}

// TestPortalOffChangesOnlyTheIdentityProvider: portal portal → none removes the
// portal and its client at the identity provider, nothing else.
func TestPortalOffChangesOnlyTheIdentityProvider(t *testing.T) {
	before := renderObjects(t, nil)
	after := renderObjects(t, map[string]string{"portal: portal ": "portal: none "})
	changed := assertSwap(t, before, after, nil, []string{"demo-portal"}, []string{"demo-keycloak"})
	for _, obj := range changed["demo-keycloak"] {
		if !strings.Contains(before["demo-keycloak"][obj], "portal") && obj != "Job/demo-keycloak-config" {
			t.Errorf("keycloak's %s changed but had nothing of the portal", obj)
		}
	}
}

// lineDiffOf returns the lines of a and b that differ, in pairs ("-" then "+").
func lineDiffOf(a, b string) []string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, "-"+x, "+"+y)
		}
	}
	return out
}
