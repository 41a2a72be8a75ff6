package plan_test

import (
	"strings"
	"testing"
)

// TestSwapMailOffRemovesEveryLink: mail stalwart → none removes the mail release and
// changes exactly the components linked to it: its identity client, its portal tile,
// its database, and the consumers that sent through its relay (Synapse's
// notifications, Nextcloud's mail settings). Afterwards no object of any release
// names the mail release or its hosts; switching mail on again restores every object.
func TestSwapMailOffRemovesEveryLink(t *testing.T) {
	const d = "192.168.49.2.sslip.io"
	before := renderObjects(t, nil)
	off := map[string]string{"portal: portal ": "portal: portal\n    mail: none "}
	after := renderObjects(t, off)
	changed := assertSwap(t, before, after, nil, []string{"demo-stalwart"},
		[]string{"demo-keycloak", "demo-nextcloud", "demo-portal", "demo-postgresql", "demo-synapse"})
	if got := strings.Join(changed["demo-synapse"], ","); got != "ConfigMap/demo-synapse-synapse,Deployment/demo-synapse-synapse" {
		t.Errorf("synapse objects changed: %s; want its homeserver.yaml and the Deployment's config checksum", got)
	}
	if got := strings.Join(changed["demo-nextcloud"], ","); got != "Job/demo-nextcloud-occ-config" {
		t.Errorf("nextcloud objects changed: %s; want only the occ hook", got)
	}
	for _, link := range []string{"demo-stalwart", "mail." + d, "webmail." + d} {
		for rel, objs := range after {
			for name, obj := range objs {
				if strings.Contains(obj, link) {
					t.Errorf("%s %s still names %q with mail switched off", rel, name, link)
				}
			}
		}
	}
	if hs := before["demo-synapse"]["ConfigMap/demo-synapse-synapse"]; !strings.Contains(hs, "smtp_host: demo-stalwart-relay.") {
		t.Errorf("synapse does not send through the relay with mail on:\n%s", hs)
	}
	if job := before["demo-nextcloud"]["Job/demo-nextcloud-occ-config"]; !strings.Contains(job, "demo-stalwart-relay.") {
		t.Error("nextcloud's occ hook has no relay with mail on")
	}
	if job := after["demo-nextcloud"]["Job/demo-nextcloud-occ-config"]; !strings.Contains(job, `occ config:system:delete "$key"`) {
		t.Error("nextcloud's occ hook does not remove the mail settings with mail off")
	}
	assertSwap(t, before, renderObjects(t, nil), nil, nil, nil)
}
