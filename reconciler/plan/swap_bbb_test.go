package plan_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// bbbServerGolden is the bigbluebutton release of the example workplace with video:
// bigbluebutton and no servers declared (the server in the cluster), object by object.
// Regenerate only on purpose: PLATZWART_UPDATE_GOLDEN=1.
const bbbServerGolden = "testdata/bbb/bigbluebutton-server.golden"

// exampleServers is the external server the example declares for bigbluebutton.
const exampleServers = "    bigbluebutton:\n      servers:\n        - url: https://bbb.example.org/bigbluebutton/\n          secret: {name: bbb-secret, key: secret}\n"

// bbbInCluster swaps the example to BigBlueButton with its server in the cluster.
var bbbInCluster = map[string]string{"video: jitsi ": "video: bigbluebutton ", exampleServers: ""}

// bbbJoin lists a release's objects in name order, each after a "### Kind/name" line.
func bbbJoin(objs map[string]string) string {
	names := make([]string, 0, len(objs))
	for k := range objs {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString("### " + k + "\n" + objs[k] + "\n")
	}
	return b.String()
}

func decodeInto(t *testing.T, doc string, into any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(doc), into); err != nil {
		t.Fatalf("decode: %v\n%s", err, doc)
	}
}

// secretRefOf returns the secretKeyRef of env var name in container c of d.
func secretRefOf(t *testing.T, d *appsv1.Deployment, c, name string) corev1.SecretKeySelector {
	t.Helper()
	for _, ct := range d.Spec.Template.Spec.Containers {
		if ct.Name != c {
			continue
		}
		for _, e := range ct.Env {
			if e.Name == name {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Fatalf("%s %s: %s is not read from a Secret", d.Name, c, name)
				}
				return *e.ValueFrom.SecretKeyRef
			}
		}
		t.Fatalf("%s %s: no %s", d.Name, c, name)
	}
	t.Fatalf("%s: no container %s", d.Name, c)
	return corev1.SecretKeySelector{}
}

func envValue(d *appsv1.Deployment, c, name string) (string, bool) {
	for _, ct := range d.Spec.Template.Spec.Containers {
		if ct.Name != c {
			continue
		}
		for _, e := range ct.Env {
			if e.Name == name && e.ValueFrom == nil {
				return e.Value, true
			}
		}
	}
	return "", false
}

// TestBBBServerSharesTheGeneratedSecret: without servers, the bigbluebutton release
// renders the server, and Greenlight's BIGBLUEBUTTON_SECRET, bbb-web's SHARED_SECRET
// (securitySalt) and akka-apps' SHARED_SECRET all name one key of a Secret the plan
// generates in the cluster; Greenlight's endpoint is the server under the meet host,
// where the Ingress sends the server's paths to its nginx and / to Greenlight; the
// server pod uses the node's network on the node the profile selects.
func TestBBBServerSharesTheGeneratedSecret(t *testing.T) {
	s := readExample(t)
	for from, to := range bbbInCluster {
		s = strings.Replace(s, from, to, 1)
	}
	plans, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": s}))
	if err != nil {
		t.Fatal(err)
	}
	objs := renderObjectsFrom(t, s)["demo-bigbluebutton"]
	var gl, srv appsv1.Deployment
	decodeInto(t, objs["Deployment/demo-bigbluebutton-greenlight"], &gl)
	decodeInto(t, objs["Deployment/demo-bigbluebutton-server"], &srv)

	want := corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "demo-bigbluebutton-server"}, Key: "shared-secret"}
	for _, side := range []struct{ container, env string }{{"greenlight", "BIGBLUEBUTTON_SECRET"}, {"bbb-web", "SHARED_SECRET"}, {"apps-akka", "SHARED_SECRET"}} {
		d := &srv
		if side.container == "greenlight" {
			d = &gl
		}
		if got := secretRefOf(t, d, side.container, side.env); got != want {
			t.Errorf("%s %s reads %s/%s, want %s/%s", side.container, side.env, got.Name, got.Key, want.Name, want.Key)
		}
	}
	// The plan generates that Secret, with that key, in the cluster.
	var gen bool
	for _, sec := range plans[0].Secrets {
		if sec.Name == want.Name {
			_, gen = sec.Keys[want.Key]
		}
	}
	if !gen {
		t.Errorf("the plan generates no Secret %s with key %s", want.Name, want.Key)
	}
	if got, _ := envValue(&gl, "greenlight", "BIGBLUEBUTTON_ENDPOINT"); got != "https://meet.192.168.49.2.sslip.io/bigbluebutton/" {
		t.Errorf("Greenlight's endpoint %q, want the server under the meet host", got)
	}

	// Media: the node's network, on the profile's media node.
	ps := srv.Spec.Template.Spec
	if !ps.HostNetwork || ps.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("server pod: hostNetwork %v, dnsPolicy %q; want true, ClusterFirstWithHostNet", ps.HostNetwork, ps.DNSPolicy)
	}
	if ps.NodeSelector["platzwart.io/media"] != "bigbluebutton" {
		t.Errorf("server pod nodeSelector %v, want the minikube profile's platzwart.io/media=bigbluebutton", ps.NodeSelector)
	}
	if !slices.ContainsFunc(ps.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Key == "platzwart.io/media" && tl.Value == "bigbluebutton" && tl.Effect == corev1.TaintEffectNoSchedule
	}) {
		t.Errorf("server pod tolerations %v lack the media taint", ps.Tolerations)
	}
	if *srv.Spec.Replicas != 1 || srv.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("server: %d replicas, strategy %s; want 1 and Recreate (it holds the node's ports)", *srv.Spec.Replicas, srv.Spec.Strategy.Type)
	}

	var ing networkingv1.Ingress
	decodeInto(t, objs["Ingress/demo-bigbluebutton"], &ing)
	backend := map[string]string{}
	for _, p := range ing.Spec.Rules[0].HTTP.Paths {
		backend[p.Path] = p.Backend.Service.Name
	}
	for path, svc := range map[string]string{"/": "demo-bigbluebutton-greenlight", "/bigbluebutton": "demo-bigbluebutton-server",
		"/html5client": "demo-bigbluebutton-server", "/bbb-webrtc-sfu": "demo-bigbluebutton-server", "/graphql": "demo-bigbluebutton-server"} {
		if backend[path] != svc {
			t.Errorf("Ingress sends %s to %q, want %s", path, backend[path], svc)
		}
	}
}

// TestBBBExternalServerHasNoServerPod: with servers declared (the example), no server
// workload is rendered and Greenlight uses the declared endpoint and Secret.
func TestBBBExternalServerHasNoServerPod(t *testing.T) {
	objs := renderObjects(t, map[string]string{"video: jitsi ": "video: bigbluebutton "})["demo-bigbluebutton"]
	for k := range objs {
		if strings.Contains(k, "-server") {
			t.Errorf("external server declared, yet the release renders %s", k)
		}
	}
	var gl appsv1.Deployment
	decodeInto(t, objs["Deployment/demo-bigbluebutton-greenlight"], &gl)
	if got, _ := envValue(&gl, "greenlight", "BIGBLUEBUTTON_ENDPOINT"); got != "https://bbb.example.org/bigbluebutton/" {
		t.Errorf("endpoint %q, want the declared server", got)
	}
	if got := secretRefOf(t, &gl, "greenlight", "BIGBLUEBUTTON_SECRET"); got.Name != "bbb-secret" || got.Key != "secret" {
		t.Errorf("BIGBLUEBUTTON_SECRET from %s/%s, want bbb-secret/secret", got.Name, got.Key)
	}
}

// TestSwapBBBServer: jitsi → bigbluebutton with the server in the cluster replaces the
// video release (now Greenlight and the server, golden file), and changes exactly what
// the swap to Greenlight alone changes (TestSwapVideo): the identity client list, the
// chat client's video settings, the portal's tile, Greenlight's database and Redis
// access. Files and office stay byte-identical, and swapping back restores the Jitsi
// render byte for byte.
func TestSwapBBBServer(t *testing.T) {
	jitsi := renderObjects(t, nil)
	bbb := renderObjects(t, bbbInCluster)
	changed := assertSwap(t, jitsi, bbb,
		[]string{"demo-bigbluebutton"}, []string{"demo-jitsi"},
		[]string{"demo-keycloak", "demo-portal", "demo-postgresql", "demo-synapse", "demo-valkey"})
	if got := strings.Join(changed["demo-synapse"], ","); got != "ConfigMap/demo-synapse-element-config,Deployment/demo-synapse-element" {
		t.Errorf("chat release objects changed by the video swap: %s", got)
	}
	// The server adds nothing outside its release: the consumers' wiring is the same
	// as with an external server.
	ext := renderObjects(t, map[string]string{"video: jitsi ": "video: bigbluebutton "})
	for rel, objs := range bbb {
		if rel == "demo-bigbluebutton" {
			continue
		}
		for k, v := range objs {
			if ext[rel][k] != v {
				t.Errorf("%s %s differs between the in-cluster and the external server", rel, k)
			}
		}
	}

	got := bbbJoin(bbb["demo-bigbluebutton"])
	if os.Getenv("PLATZWART_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(filepath.FromSlash(bbbServerGolden), []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(filepath.FromSlash(bbbServerGolden))
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the bigbluebutton release with its server changed; diff against %s (PLATZWART_UPDATE_GOLDEN=1 rewrites it)", bbbServerGolden)
	}

	back := renderObjects(t, nil)
	if a, r, c := changes(jitsi, back); len(a)+len(r)+len(c) != 0 {
		t.Errorf("swapping back does not restore the render: added %v removed %v changed %v", a, r, c)
	}
}
