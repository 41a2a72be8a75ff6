package plan_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// nextcloudGolden is the Nextcloud release of the example workplace (office:
// collabora), object by object, as rendered before the office kind wiring existed.
// Regenerate only on purpose: PLATZWART_UPDATE_GOLDEN=1.
const nextcloudGolden = "testdata/office2/nextcloud-collabora.golden"

func joinObjects(objs map[string]string) string {
	names := make([]string, 0, len(objs))
	for k := range objs {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString("### " + k + "\n")
		b.WriteString(objs[k])
		b.WriteString("\n")
	}
	return b.String()
}

// TestNextcloudWithCollaboraUnchanged: the Nextcloud release with Collabora (and the
// example's mail) renders byte for byte as the golden file, so that a change for
// another office kind cannot change it unseen. Regenerate with
// PLATZWART_UPDATE_GOLDEN=1 after reading the diff.
func TestNextcloudWithCollaboraUnchanged(t *testing.T) {
	got := joinObjects(renderObjects(t, nil)["demo-nextcloud"])
	if os.Getenv("PLATZWART_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(filepath.FromSlash(nextcloudGolden), []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(filepath.FromSlash(nextcloudGolden))
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the Nextcloud release with Collabora changed; diff against %s", nextcloudGolden)
	}
}

// TestSwapOfficeEuroOffice: office collabora ⇄ eurooffice replaces the office release,
// gives the Document Server its database on the workplace's PostgreSQL, and in the
// files release changes only the occ hook (the connector: richdocuments or the
// eurooffice app with the JWT secret's reference) and the NetworkPolicy admitting
// the office release; identity, chat, video and the
// portal stay byte-identical (office signs nobody in and has no tile). Swapping back
// restores the Collabora render byte for byte.
func TestSwapOfficeEuroOffice(t *testing.T) {
	collabora := renderObjects(t, nil)
	euro := renderObjects(t, map[string]string{"office: collabora ": "office: eurooffice "})
	changed := assertSwap(t, collabora, euro,
		[]string{"demo-eurooffice"}, []string{"demo-collabora"},
		[]string{"demo-nextcloud", "demo-postgresql"})
	// Files admits its consumers (the office server) by release name.
	if got := strings.Join(changed["demo-nextcloud"], ","); got != "Job/demo-nextcloud-occ-config,NetworkPolicy/demo-nextcloud" {
		t.Errorf("files release objects changed by the office swap: %s, want the occ hook and the NetworkPolicy", got)
	}
	if np := euro["demo-nextcloud"]["NetworkPolicy/demo-nextcloud"]; !strings.Contains(np, "demo-eurooffice") || strings.Contains(np, "demo-collabora") {
		t.Errorf("files NetworkPolicy does not admit exactly the new office release:\n%s", np)
	}
	hook := euro["demo-nextcloud"]["Job/demo-nextcloud-occ-config"]
	for _, want := range []string{
		"install_app eurooffice",
		"disable_app richdocuments",
		"occ eurooffice:documentserver --check",
		"name: OFFICE_JWT_SECRET",
		"name: demo-eurooffice-jwt",
		`value: "https://office.192.168.49.2.sslip.io"`,
	} {
		if !strings.Contains(hook, want) {
			t.Errorf("occ hook with eurooffice lacks %q", want)
		}
	}
	if strings.Contains(hook, "install_app richdocuments") {
		t.Error("occ hook with eurooffice still installs richdocuments")
	}
	// The database and its user are provisioned like every consumer's.
	if got := strings.Join(changed["demo-postgresql"], ","); !strings.Contains(got, "demo-postgresql") {
		t.Errorf("postgresql objects changed: %s", got)
	}
	back := renderObjects(t, nil)
	if a, r, c := changes(collabora, back); len(a)+len(r)+len(c) != 0 {
		t.Errorf("swapping back does not restore the render: added %v removed %v changed %v", a, r, c)
	}
	if got := joinObjects(back["demo-nextcloud"]); got != joinObjects(collabora["demo-nextcloud"]) {
		t.Error("files release differs after swapping back")
	}
}

// TestSwapOfficeEuroOfficeToNone: office eurooffice → none removes the Document
// Server and its database grant; in the files release only the hook and the
// NetworkPolicy (no office consumer left) change.
func TestSwapOfficeEuroOfficeToNone(t *testing.T) {
	euro := renderObjects(t, map[string]string{"office: collabora ": "office: eurooffice "})
	none := renderObjects(t, map[string]string{"office: collabora ": "office: none "})
	changed := assertSwap(t, euro, none, nil, []string{"demo-eurooffice"},
		[]string{"demo-nextcloud", "demo-postgresql"})
	if got := strings.Join(changed["demo-nextcloud"], ","); got != "Job/demo-nextcloud-occ-config,NetworkPolicy/demo-nextcloud" {
		t.Errorf("files release objects changed: %s, want the occ hook and the NetworkPolicy", got)
	}
}
