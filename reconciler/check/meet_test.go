package check

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/platzwart/platzwart/e2e/cluster"
)

// newMeetWorkplace plans a workplace with video: meet (LiveKit's media address
// declared, the domain being no sslip.io one) and generates in a new namespace the
// Secrets the checks read.
func newMeetWorkplace(t *testing.T) *workplace {
	t.Helper()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: ` + ns + `}
spec:
  domain: ` + testDomain + `
  profile: minikube
  components: {video: meet}
  values:
    meet: {livekit: {advertiseAddress: 192.0.2.10}}
`
	w, _ := workplaceFrom(t, c, t.TempDir(), ns, "demo", doc)
	return w
}

// serveMeet is the ingress with a working Meet: its configuration, LiveKit's health
// check and the backend's login hand-off.
func serveMeet(t *testing.T, w *workplace) *ingress {
	t.Helper()
	in := serve(t, w, provider{}, nil)
	in.set("meet."+testDomain+"/api/v1.0/config/", file(t, "meet/config.json"))
	in.set("livekit."+testDomain+"/", fixture{status: http.StatusOK, body: []byte("OK")})
	in.set("meet."+testDomain+"/api/v1.0/authenticate/", fixture{handOff: "meet"})
	return in
}

// TestMeetProbes: a working Meet passes (its configuration points browsers at the
// workplace's LiveKit, LiveKit is healthy, the backend hands the login to the identity
// provider as client meet, Element offers no Jitsi); a broken one fails each probe
// with its reason: LiveKit's URL pointing elsewhere, LiveKit not ready (406, stale
// node statistics), the login handed off as another client, a backend that answers
// 502.
func TestMeetProbes(t *testing.T) {
	t.Parallel()
	w := newMeetWorkplace(t)
	meet, livekit := "https://meet."+testDomain, "https://livekit."+testDomain
	t.Run("working", func(t *testing.T) {
		in := serveMeet(t, w)
		rep := run(t, w, in.options(w), 10*time.Second)
		if !rep.OK() {
			t.Fatalf("checks failed:\n%s", dump(rep))
		}
		want(t, rep, CheckApp, meet+"/api/v1.0/config/", Pass, "")
		want(t, rep, CheckApp, livekit+"/", Pass, "")
		if r := want(t, rep, CheckApp, meet+"/api/v1.0/authenticate/", Pass, ""); !strings.Contains(r.Message, `"meet"`) {
			t.Errorf("hand-off message names no client meet: %s", r.Message)
		}
		want(t, rep, CheckClient, "meet", Pass, "")
		if r := want(t, rep, CheckApp, "https://chat."+testDomain+"/config.json", Pass, ""); !strings.Contains(r.Message, "no Jitsi") {
			t.Errorf("Element without Jitsi: %s", r.Message)
		}
	})
	t.Run("broken", func(t *testing.T) {
		in := serveMeet(t, w)
		cfg := file(t, "meet/config.json")
		cfg.body = []byte(strings.Replace(string(cfg.body), "https://livekit.wp.example.org", "wss://livekit.example.com", 1))
		in.set("meet."+testDomain+"/api/v1.0/config/", cfg)
		in.set("livekit."+testDomain+"/", fixture{status: http.StatusNotAcceptable, body: []byte("Not Ready\nNode Updated At 1970-01-01")})
		in.set("meet."+testDomain+"/api/v1.0/authenticate/", fixture{handOff: "portal"})
		rep := run(t, w, in.options(w), 10*time.Second)
		if r := want(t, rep, CheckApp, meet+"/api/v1.0/config/", Fail, ReasonUnexpectedBody); !strings.Contains(r.Message, "wss://livekit.example.com") {
			t.Errorf("the wrong LiveKit URL is not named: %s", r.Message)
		}
		if r := want(t, rep, CheckApp, livekit+"/", Fail, ReasonUnexpectedStatus); !strings.Contains(r.Message, "Not Ready") {
			t.Errorf("LiveKit's own reason is not shown: %s", r.Message)
		}
		want(t, rep, CheckApp, meet+"/api/v1.0/authenticate/", Fail, ReasonUnexpectedBody)
		if got := failures(rep); len(got) != 3 {
			t.Errorf("failures %v, want 3", got)
		}
	})
	t.Run("backend down", func(t *testing.T) {
		in := serveMeet(t, w)
		in.set("meet."+testDomain+"/api/v1.0/config/", fixture{status: http.StatusBadGateway, body: []byte("bad gateway")})
		rep := run(t, w, in.options(w), 10*time.Second)
		want(t, rep, CheckApp, meet+"/api/v1.0/config/", Fail, ReasonUnexpectedStatus)
	})
}
