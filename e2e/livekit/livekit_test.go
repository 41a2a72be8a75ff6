package livekit_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/e2e/toolbuild"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(cluster.RunTests(m))
}

// advertise is the media address the workplace declares (TEST-NET-1: never routed).
const advertise = "192.0.2.10"

// rendered is what charts/meet renders for LiveKit in a planned workplace, and the
// values of the Secrets platzwart generated for it.
type rendered struct {
	release    *plan.Release
	deployment *appsv1.Deployment
	configMaps map[string]map[string]string
	media      *corev1.Service
	secrets    map[string]map[string][]byte
}

func renderMeet(t *testing.T) *rendered {
	t.Helper()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: ` + ns + `}
spec:
  domain: wp.example.org
  profile: minikube
  components:
    video: meet
  values:
    meet: {livekit: {advertiseAddress: ` + advertise + `}}
`
	repo, err := load.FS(fstest.MapFS{"workplace.yaml": &fstest.MapFile{Data: []byte(doc), Mode: 0o644}}, "repo", platzwart.Builtin(), ns)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	r := &rendered{configMaps: map[string]map[string]string{}, secrets: map[string]map[string][]byte{}}
	for _, rel := range p.Releases {
		if rel.Component == "meet" {
			r.release = rel
		}
	}
	if r.release == nil {
		t.Fatal("the plan has no meet release")
	}
	ms, err := render.Plan(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Release != r.release.Name {
			continue
		}
		for _, d := range strings.Split(m.Manifest, "\n---") {
			var head struct {
				Kind     string                `json:"kind"`
				Metadata struct{ Name string } `json:"metadata"`
				Data     map[string]string     `json:"data"`
			}
			if yaml.Unmarshal([]byte(d), &head) != nil {
				continue
			}
			switch {
			case head.Kind == "ConfigMap":
				r.configMaps[head.Metadata.Name] = head.Data
			case head.Kind == "Deployment" && head.Metadata.Name == r.release.Name+"-livekit":
				r.deployment = &appsv1.Deployment{}
				if err := yaml.UnmarshalStrict([]byte(d), r.deployment); err != nil {
					t.Fatal(err)
				}
			case head.Kind == "Service" && head.Metadata.Name == r.release.Name+"-livekit-media":
				r.media = &corev1.Service{}
				if err := yaml.UnmarshalStrict([]byte(d), r.media); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if r.deployment == nil || r.media == nil {
		t.Fatal("the meet release renders no LiveKit Deployment or media Service")
	}
	// The Secrets, generated as apply does: only the meet component's.
	only := *p
	only.Secrets = nil
	for _, s := range p.Secrets {
		if s.Component == "meet" {
			only.Secrets = append(only.Secrets, s)
		}
	}
	cs := kubernetes.NewForConfigOrDie(c.Config())
	if _, err := (&secrets.Manager{Client: cs}).Ensure(t.Context(), &only, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range only.Secrets {
		sec, err := cs.CoreV1().Secrets(ns).Get(t.Context(), s.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r.secrets[s.Name] = sec.Data
	}
	return r
}

// container returns the LiveKit container.
func (r *rendered) container(t *testing.T) corev1.Container {
	t.Helper()
	for _, c := range r.deployment.Spec.Template.Spec.Containers {
		if c.Name == "livekit" {
			return c
		}
	}
	t.Fatal("the LiveKit Deployment has no container livekit")
	return corev1.Container{}
}

// env resolves the container's environment as the kubelet does: literal values,
// secretKeyRef from the generated Secrets, and $(VAR) references to variables defined
// before (k8s.io/kubernetes third_party/forked/golang/expansion: $$ is a literal $,
// an undefined reference stays as written). A reference to anything else fails.
func (r *rendered) env(t *testing.T, c corev1.Container) []string {
	t.Helper()
	vals := map[string]string{}
	var out []string
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			data, ok := r.secrets[ref.Name][ref.Key]
			if !ok {
				t.Fatalf("env %s: Secret %s key %s is not one platzwart generates for meet", e.Name, ref.Name, ref.Key)
			}
			v = string(data)
		case e.ValueFrom != nil:
			t.Fatalf("env %s: valueFrom other than secretKeyRef: map it in the test", e.Name)
		default:
			v = expand(v, vals)
		}
		vals[e.Name] = v
		out = append(out, e.Name+"="+v)
	}
	return out
}

var reference = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

func expand(s string, vals map[string]string) string {
	return reference.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if v, ok := vals[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// files writes the container's ConfigMap volumes into dir and returns the args with
// each mount path mapped to its directory there.
func (r *rendered) files(t *testing.T, c corev1.Container, dir string) []string {
	t.Helper()
	args := append([]string{}, c.Args...)
	for _, m := range c.VolumeMounts {
		var vol *corev1.Volume
		for i, v := range r.deployment.Spec.Template.Spec.Volumes {
			if v.Name == m.Name {
				vol = &r.deployment.Spec.Template.Spec.Volumes[i]
			}
		}
		if vol == nil {
			t.Fatalf("volume %s of the LiveKit container is not in the pod", m.Name)
		}
		local := filepath.Join(dir, m.Name)
		if err := os.MkdirAll(local, 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case vol.ConfigMap != nil:
			data, ok := r.configMaps[vol.ConfigMap.Name]
			if !ok {
				t.Fatalf("volume %s: ConfigMap %s is not rendered by the release", m.Name, vol.ConfigMap.Name)
			}
			for k, v := range data {
				if err := os.WriteFile(filepath.Join(local, k), []byte(v), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		case vol.EmptyDir != nil:
		default:
			t.Fatalf("volume %s of the LiveKit container is neither a ConfigMap nor an emptyDir: map it in the test", m.Name)
		}
		for i, a := range c.Args {
			if a == m.MountPath || strings.HasPrefix(a, m.MountPath+"/") {
				args[i] = local + strings.TrimPrefix(a, m.MountPath)
			}
		}
	}
	return args
}

// server is a running livekit-server.
type server struct {
	base string // http://127.0.0.1:<port>
	log  *lockedBuffer
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs livekit-server with args and env until the test ends, and waits until
// the container's readiness probe answers 200.
func start(t *testing.T, bin string, args, env []string, probe *corev1.Probe, port int) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	s := &server{base: "http://127.0.0.1:" + strconv.Itoa(port), log: &lockedBuffer{}}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("livekit-server log:\n%s", s.log.String())
		}
	})
	if probe == nil || probe.HTTPGet == nil {
		t.Fatal("the LiveKit container has no HTTP readiness probe")
	}
	probeURL := s.base + probe.HTTPGet.Path
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(probeURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-exited:
			t.Fatalf("livekit-server exited before its readiness probe %s answered: %v\n%s", probeURL, waitErr, s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("livekit-server's readiness probe %s did not answer 200: %v\n%s", probeURL, err, s.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestLiveKitTakesTheChartsConfigAndTheGeneratedKey runs livekit-server with the
// configuration file, arguments and environment of the rendered meet release and the
// key pair platzwart generated: it starts (the configuration is parsed strictly),
// answers the readiness probe, listens on the media Service's UDP and TCP ports and
// advertises the declared address; a join token signed with the generated key (minted
// by livekit-server's own create-join-token, protocol's auth package) validates, and
// so does a server API call with a token signed as the backend signs it; tokens
// signed with another secret or naming another key are refused.
func TestLiveKitTakesTheChartsConfigAndTheGeneratedKey(t *testing.T) {
	bin := livekitServer(t)
	r := renderMeet(t)
	c := r.container(t)
	if want := "livekit-server:" + toolVersionOf(t); !strings.HasSuffix(c.Image, want) {
		t.Fatalf("the chart runs %s, the test builds %s: keep charts/meet and e2e/tools/livekit-server at one version", c.Image, want)
	}
	args := r.files(t, c, t.TempDir())
	env := r.env(t, c)
	httpPort := 0
	for _, p := range c.Ports {
		if p.Name == "http" {
			httpPort = int(p.ContainerPort)
		}
	}
	if httpPort == 0 {
		t.Fatal("the LiveKit container declares no http port")
	}
	s := start(t, bin, args, env, c.ReadinessProbe, httpPort)

	// The media ports: where the Service sends clients, LiveKit listens and says so.
	var udpPort, tcpPort int
	for _, p := range r.media.Spec.Ports {
		switch p.Protocol {
		case corev1.ProtocolUDP:
			udpPort = int(p.Port)
		case corev1.ProtocolTCP:
			tcpPort = int(p.Port)
		}
		if r.media.Spec.Type == corev1.ServiceTypeNodePort && int(p.NodePort) != int(p.Port) {
			t.Errorf("media port %s: NodePort %d differs from the port %d LiveKit advertises", p.Name, p.NodePort, p.Port)
		}
	}
	if udpPort == 0 || tcpPort == 0 {
		t.Fatalf("the media Service lacks a UDP or a TCP port: %+v", r.media.Spec.Ports)
	}
	if l, err := net.ListenUDP("udp", &net.UDPAddr{Port: udpPort}); err == nil {
		l.Close()
		t.Errorf("UDP port %d of the media Service is free: LiveKit does not listen there", udpPort)
	}
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(tcpPort), 5*time.Second); err != nil {
		t.Errorf("ICE/TCP port %d of the media Service: %v", tcpPort, err)
	} else {
		conn.Close()
	}
	started := startLine(t, s)
	if started.NodeIP != advertise {
		t.Errorf("LiveKit advertises node IP %q, the workplace declared %q", started.NodeIP, advertise)
	}
	if started.UDP.Start != udpPort || started.TCP != tcpPort {
		t.Errorf("LiveKit took UDP %d and TCP %d, the Service routes %d and %d", started.UDP.Start, started.TCP, udpPort, tcpPort)
	}

	key, secret := generatedKey(t, r, c)
	if len(secret) < 32 {
		t.Errorf("the generated API secret has %d characters; LiveKit wants at least 32", len(secret))
	}
	validate := func(token string) (int, string) {
		resp, err := http.Get(s.base + "/rtc/validate?access_token=" + url.QueryEscape(token))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	other := strings.Repeat("x", len(secret))
	cases := []struct {
		name string
		keys string // LIVEKIT_KEYS the token is minted with; "" = the container's
		code int
	}{
		{"generated key", "", http.StatusOK},
		{"another secret", fmt.Sprintf("%q: %q", key, other), http.StatusUnauthorized},
		{"another key", fmt.Sprintf("%q: %q", "APIunknown", secret), http.StatusUnauthorized},
	}
	for _, tc := range cases {
		mintEnv := env
		if tc.keys != "" {
			mintEnv = append(append([]string{}, env...), "LIVEKIT_KEYS="+tc.keys)
		}
		token := mint(t, bin, args, mintEnv)
		code, body := validate(token)
		if code != tc.code {
			t.Errorf("join token signed with the %s: /rtc/validate answered %d %q, want %d", tc.name, code, body, tc.code)
		}
		if tc.code == http.StatusOK && body != "success" {
			t.Errorf("join token signed with the %s: /rtc/validate answered %q, want success", tc.name, body)
		}
	}

	// The server API, as Meet's backend calls it (livekit-api: a bearer JWT, HS256,
	// iss = API key, a video grant).
	listRooms := func(signWith string) int {
		req, err := http.NewRequest(http.MethodPost, s.base+"/twirp/livekit.RoomService/ListRooms", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+hs256(t, key, signWith, map[string]any{"roomList": true}))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := listRooms(secret); code != http.StatusOK {
		t.Errorf("ListRooms with a token signed with the generated secret: HTTP %d, want 200", code)
	}
	if code := listRooms(other); code != http.StatusUnauthorized {
		t.Errorf("ListRooms with a token signed with another secret: HTTP %d, want 401", code)
	}
	for _, line := range strings.Split(s.log.String(), "\n") {
		if strings.Contains(line, secret) {
			t.Errorf("livekit-server logged the API secret")
			break
		}
	}
}

// generatedKey is the API key pair the container gets from the generated Secret.
func generatedKey(t *testing.T, r *rendered, c corev1.Container) (string, string) {
	t.Helper()
	var key, secret string
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		switch e.Name {
		case "LIVEKIT_API_KEY":
			key = string(r.secrets[ref.Name][ref.Key])
		case "LIVEKIT_API_SECRET":
			secret = string(r.secrets[ref.Name][ref.Key])
		}
	}
	if key == "" || secret == "" {
		t.Fatal("the LiveKit container gets no LIVEKIT_API_KEY or LIVEKIT_API_SECRET from a Secret")
	}
	return key, secret
}

// mint runs livekit-server create-join-token with the server's configuration and the
// given environment: the token is signed with the first key LIVEKIT_KEYS names.
func mint(t *testing.T, bin string, args, env []string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, append(append([]string{}, args...), "create-join-token", "--room", "platzwart-check", "--identity", "tester")...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("create-join-token: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if tok, ok := strings.CutPrefix(line, "Token: "); ok {
			return strings.TrimSpace(tok)
		}
	}
	t.Fatalf("create-join-token printed no token:\n%s", out)
	return ""
}

// hs256 signs a LiveKit access token with the Go standard library: what any SDK
// sends (header alg HS256, iss = API key, the grant under "video").
func hs256(t *testing.T, key, secret string, video map[string]any) string {
	t.Helper()
	now := time.Now()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "HS256", "typ": "JWT"}) + "." +
		enc(map[string]any{"iss": key, "sub": "meet-backend", "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(10 * time.Minute).Unix(), "video": video})
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// startedLine is livekit-server's "starting LiveKit server" log entry
// (pkg/service/server.go Start).
type startedLine struct {
	NodeIP string `json:"nodeIP"`
	TCP    int    `json:"rtc.portTCP"`
	UDP    struct {
		Start int `json:"Start"`
	} `json:"rtc.portUDP"`
}

func startLine(t *testing.T, s *server) startedLine {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(s.log.String()))
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "starting LiveKit server") {
			continue
		}
		i := strings.Index(line, "{")
		var st startedLine
		if i < 0 || json.Unmarshal([]byte(line[i:]), &st) != nil {
			t.Fatalf("cannot read the start line: %s", line)
		}
		return st
	}
	t.Fatalf("livekit-server logged no start line:\n%s", s.log.String())
	return startedLine{}
}

// livekitTool is livekit-server at the version e2e/tools/livekit-server pins.
var livekitTool = toolbuild.Tool{Dir: "livekit-server", Module: "github.com/livekit/livekit-server",
	Pkg: "github.com/livekit/livekit-server/cmd/server", Binary: "livekit-server"}

// livekitServer returns the binary built from e2e/tools/livekit-server (the first
// build took 16 minutes here).
func livekitServer(t *testing.T) string {
	t.Helper()
	return toolbuild.Build(t, livekitTool)
}

// toolVersionOf is the livekit-server version e2e/tools/livekit-server pins.
func toolVersionOf(t *testing.T) string {
	t.Helper()
	v, err := toolbuild.Version(livekitTool)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
