package plan_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// jmapStandIn answers the part of Stalwart's JMAP management API that the stalwart
// chart's provision.mjs uses, keeping objects in memory. It is a stand-in, not
// Stalwart (which does not run here): it checks what the script sends against the
// request shape of stalwartlabs/stalwart@v0.16.18
// tests/resources/scripts/stress_test_prepare.py (session at /.well-known/jmap,
// POST /jmap/ with capabilities urn:ietf:params:jmap:core and urn:stalwart:jmap,
// x:<Object>/get and /set) and records what it creates and updates.
type jmapStandIn struct {
	t        *testing.T
	password string
	mu       sync.Mutex
	next     int
	objects  map[string]map[string]map[string]any // type → id → object
	calls    []string                             // "x:Type/set create" or "x:Type/set update <id>"
	refuse   string                               // a type whose creates fail (notCreated)
}

func newJMAPStandIn(t *testing.T, password string) *jmapStandIn {
	s := &jmapStandIn{t: t, password: password, objects: map[string]map[string]map[string]any{}}
	// Singletons exist from the server's first start (defaults.rs).
	for _, typ := range []string{"Authentication", "Http", "MtaStageRcpt", "SystemSettings"} {
		s.objects[typ] = map[string]map[string]any{"singleton": {"id": "singleton"}}
	}
	return s
}

func (s *jmapStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz/ready" {
		return
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+s.password))
	if r.Header.Get("Authorization") != want {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/.well-known/jmap":
		_ = json.NewEncoder(w).Encode(map[string]any{
			"apiUrl":          "https://mail.example.org/jmap/",
			"accounts":        map[string]any{"a1": map[string]any{}},
			"primaryAccounts": map[string]any{"urn:stalwart:jmap": "a1"},
		})
	case r.Method == http.MethodPost && r.URL.Path == "/jmap/":
		var req struct {
			Using       []string `json:"using"`
			MethodCalls [][3]any `json:"methodCalls"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !slices.Contains(req.Using, "urn:ietf:params:jmap:core") || !slices.Contains(req.Using, "urn:stalwart:jmap") {
			http.Error(w, fmt.Sprintf("using %v", req.Using), http.StatusBadRequest)
			return
		}
		var out [][3]any
		for _, c := range req.MethodCalls {
			name, _ := c[0].(string)
			args, _ := c[1].(map[string]any)
			out = append(out, [3]any{name, s.call(name, args), c[2]})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"methodResponses": out})
	default:
		http.NotFound(w, r)
	}
}

func (s *jmapStandIn) call(name string, args map[string]any) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if args["accountId"] != "a1" {
		s.t.Errorf("%s: accountId %v", name, args["accountId"])
	}
	typ, method, ok := strings.Cut(strings.TrimPrefix(name, "x:"), "/")
	if !ok || !strings.HasPrefix(name, "x:") {
		s.t.Errorf("method %q is not x:<Object>/<method>", name)
		return map[string]any{}
	}
	switch method {
	case "get":
		var list []any
		for _, o := range s.objects[typ] {
			list = append(list, o)
		}
		return map[string]any{"list": list}
	case "set":
		res := map[string]any{}
		if create, ok := args["create"].(map[string]any); ok {
			created, notCreated := map[string]any{}, map[string]any{}
			for k, v := range create {
				if typ == s.refuse {
					notCreated[k] = map[string]any{"type": "invalidProperties"}
					continue
				}
				s.next++
				id := fmt.Sprintf("%s%d", strings.ToLower(typ[:1]), s.next)
				o := v.(map[string]any)
				o["id"] = id
				if s.objects[typ] == nil {
					s.objects[typ] = map[string]map[string]any{}
				}
				s.objects[typ][id] = o
				created[k] = map[string]any{"id": id}
				s.calls = append(s.calls, name+" create")
			}
			res["created"], res["notCreated"] = created, notCreated
		}
		if update, ok := args["update"].(map[string]any); ok {
			for id, v := range update {
				o, ok := s.objects[typ][id]
				if !ok {
					res["notUpdated"] = map[string]any{id: map[string]any{"type": "notFound"}}
					continue
				}
				for k, val := range v.(map[string]any) {
					o[k] = val
				}
				s.calls = append(s.calls, name+" update "+id)
			}
		}
		return res
	}
	s.t.Errorf("unexpected method %s", name)
	return map[string]any{}
}

// stalwartConfigMap renders the example and returns the stalwart release's ConfigMap data.
func stalwartConfigMap(t *testing.T) map[string]string {
	t.Helper()
	objs := renderObjects(t, nil)
	doc, ok := objs["demo-stalwart"]["ConfigMap/demo-stalwart"]
	if !ok {
		t.Fatal("the example renders no ConfigMap/demo-stalwart")
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(doc), &cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data
}

// TestStalwartProvisioningScript runs the chart's provision.mjs, as rendered for the
// example, with Node.js against the JMAP stand-in: the first run creates the OIDC
// directory (made the server's), the domain, the DKIM signature of the domain, the certificate and
// the relay listener, and sets the relaying rule and the default hostname, domain and
// certificate; a second run creates nothing and updates the same objects (the Job
// runs on every upgrade); an object the server refuses fails the Job.
func TestStalwartProvisioningScript(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the provisioning script cannot run here")
	}
	data := stalwartConfigMap(t)
	dir := t.TempDir()
	for _, f := range []string{"provision.mjs", "objects.json"} {
		if data[f] == "" {
			t.Fatalf("ConfigMap has no %s", f)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(data[f]), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const password = "recovery-admin-password"
	run := func(s *jmapStandIn) (string, error) {
		t.Helper()
		srv := httptest.NewServer(s)
		defer srv.Close()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "provision.mjs"))
		cmd.Env = []string{"STALWART_URL=" + srv.URL, "STALWART_ADMIN_PASSWORD=" + password, "OBJECTS_FILE=" + filepath.Join(dir, "objects.json")}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	s := newJMAPStandIn(t, password)
	if out, err := run(s); err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	wantCreates := []string{"x:Directory/set create", "x:Domain/set create", "x:DkimSignature/set create",
		"x:Certificate/set create", "x:NetworkListener/set create"}
	for _, c := range wantCreates {
		if !slices.Contains(s.calls, c) {
			t.Errorf("first run: no %s; calls %v", c, s.calls)
		}
	}
	one := func(typ string) map[string]any {
		t.Helper()
		if len(s.objects[typ]) != 1 {
			t.Fatalf("%d %s objects, want 1", len(s.objects[typ]), typ)
		}
		for _, o := range s.objects[typ] {
			return o
		}
		return nil
	}
	dirObj, domain, dkim := one("Directory"), one("Domain"), one("DkimSignature")
	if dirObj["@type"] != "Oidc" || dirObj["issuerUrl"] != "https://id.192.168.49.2.sslip.io/realms/demo" {
		t.Errorf("directory %v", dirObj)
	}
	if domain["name"] != "192.168.49.2.sslip.io" {
		t.Errorf("domain %v: want the workplace domain", domain)
	}
	// The directory is the server's (Authentication.directoryId); Domain.directoryId
	// is an enterprise property the open-source server does not take.
	if _, ok := domain["directoryId"]; ok {
		t.Errorf("domain %v sets the enterprise property directoryId", domain)
	}
	if got := s.objects["Authentication"]["singleton"]["directoryId"]; got != dirObj["id"] {
		t.Errorf("Authentication.directoryId %v, want the OIDC directory %v", got, dirObj["id"])
	}
	if dkim["domainId"] != domain["id"] || dkim["selector"] != "platzwart" || dkim["@type"] != "Dkim1RsaSha256" {
		t.Errorf("DKIM signature %v", dkim)
	}
	settings := s.objects["SystemSettings"]["singleton"]
	if settings["defaultHostname"] != "mail.192.168.49.2.sslip.io" || settings["defaultDomainId"] != domain["id"] || settings["defaultCertificateId"] != one("Certificate")["id"] {
		t.Errorf("system settings %v", settings)
	}
	headers, _ := s.objects["Http"]["singleton"]["responseHeaders"].(map[string]any)
	if headers["Access-Control-Allow-Origin"] != "https://webmail.192.168.49.2.sslip.io" {
		t.Errorf("CORS headers %v: want the web client's origin only", headers)
	}
	rule, _ := s.objects["MtaStageRcpt"]["singleton"]["allowRelaying"].(map[string]any)
	if b, _ := json.Marshal(rule); !strings.Contains(string(b), `listener == 'relay'`) {
		t.Errorf("relaying rule %s", b)
	}

	// Again, as on an upgrade: nothing new.
	first := len(s.calls)
	if out, err := run(s); err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	for _, c := range s.calls[first:] {
		if strings.HasSuffix(c, " create") {
			t.Errorf("second run created again: %s", c)
		}
	}
	for _, typ := range []string{"Directory", "Domain", "DkimSignature", "Certificate", "NetworkListener"} {
		if len(s.objects[typ]) != 1 {
			t.Errorf("after two runs %d %s objects, want 1", len(s.objects[typ]), typ)
		}
	}

	// A server that refuses the domain fails the Job, saying which.
	bad := newJMAPStandIn(t, password)
	bad.refuse = "Domain"
	out, err := run(bad)
	if err == nil || !strings.Contains(out, "x:Domain/set: notCreated") {
		t.Errorf("refused domain: err %v, output %s", err, out)
	}
	// A wrong password fails the Job before anything is written.
	wrong := newJMAPStandIn(t, "another")
	if out, err := run(wrong); err == nil || !strings.Contains(out, "HTTP 401") || len(wrong.calls) > 0 {
		t.Errorf("wrong password: err %v, calls %v, output %s", err, wrong.calls, out)
	}
}
