package plan_test

import (
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// withValues adds a component's values (YAML indented for spec.values) to the example.
func withValues(t *testing.T, values string) string {
	t.Helper()
	s := readExample(t)
	const from = "  values:\n"
	if !strings.Contains(s, from) {
		t.Fatalf("example has no %q", from)
	}
	return strings.Replace(s, from, from+"    "+values+"\n", 1)
}

// object decodes the rendered object key ("Kind/name") of a release into out.
func object(t *testing.T, objs map[string]map[string]string, release, key string, out any) {
	t.Helper()
	doc, ok := objs[release][key]
	if !ok {
		t.Fatalf("release %s has no %s", release, key)
	}
	if err := yaml.Unmarshal([]byte(doc), out); err != nil {
		t.Fatalf("%s %s: %v", release, key, err)
	}
}

// container returns the named container (or init container) of a pod spec.
func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

func env(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// caMount returns the path where the container mounts the volume projecting key of
// the Secret secret, or "".
func caMount(spec corev1.PodSpec, c corev1.Container, secret, key string) string {
	for _, v := range spec.Volumes {
		if v.Secret == nil || v.Secret.SecretName != secret {
			continue
		}
		for _, it := range v.Secret.Items {
			if it.Key != key {
				continue
			}
			for _, m := range c.VolumeMounts {
				if m.Name == v.Name {
					return strings.TrimSuffix(m.MountPath, "/") + "/" + it.Path
				}
			}
		}
	}
	return ""
}

// TestSynapseTrustsWorkplaceCA: with the TLS contract's CA reference (the example's
// TLS mode SelfSigned: ca.crt of Secret demo-tls), Synapse mounts the CA and points
// OpenSSL's default verify paths at it (SSL_CERT_FILE) while keeping the system
// store (SSL_CERT_DIR); without it, nothing is mounted and the system store alone is
// used.
func TestSynapseTrustsWorkplaceCA(t *testing.T) {
	var d appsv1.Deployment
	object(t, renderObjects(t, nil), "demo-synapse", "Deployment/demo-synapse-synapse", &d)
	spec := d.Spec.Template.Spec
	c := container(t, spec, "synapse")
	file, _ := env(c, "SSL_CERT_FILE")
	if file == "" {
		t.Fatal("synapse has no SSL_CERT_FILE")
	}
	if got := caMount(spec, c, "demo-tls", "ca.crt"); got != file {
		t.Errorf("SSL_CERT_FILE is %q, but ca.crt of Secret demo-tls is mounted at %q", file, got)
	}
	if dir, _ := env(c, "SSL_CERT_DIR"); dir != "/etc/ssl/certs" {
		t.Errorf("SSL_CERT_DIR = %q, want the image's hashed system store /etc/ssl/certs", dir)
	}

	// A public CA (no caSecret): nothing mounted, the system store alone.
	var plain appsv1.Deployment
	object(t, renderObjectsFrom(t, withValues(t, "synapse:\n      routing: {tls: {caSecret: {name: \"\"}}}")), "demo-synapse", "Deployment/demo-synapse-synapse", &plain)
	pc := container(t, plain.Spec.Template.Spec, "synapse")
	for _, name := range []string{"SSL_CERT_FILE", "SSL_CERT_DIR"} {
		if v, ok := env(pc, name); ok {
			t.Errorf("without a CA, synapse sets %s=%q", name, v)
		}
	}
}

// realmClients returns the OIDC clients of the identity provider's realm import by
// clientId.
func realmClients(t *testing.T, objs map[string]map[string]string) map[string]map[string]any {
	t.Helper()
	var cm corev1.ConfigMap
	object(t, objs, "demo-keycloak", "ConfigMap/demo-keycloak-realm", &cm)
	var realm struct {
		Clients []map[string]any `json:"clients"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["realm.json"]), &realm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, c := range realm.Clients {
		out[c["clientId"].(string)] = c
	}
	return out
}

// configFile decodes a YAML or JSON file of a rendered ConfigMap.
func configFile(t *testing.T, objs map[string]map[string]string, release, configMap, file string) map[string]any {
	t.Helper()
	var cm corev1.ConfigMap
	object(t, objs, release, "ConfigMap/"+configMap, &cm)
	data, ok := cm.Data[file]
	if !ok {
		t.Fatalf("ConfigMap %s has no %s", configMap, file)
	}
	out := map[string]any{}
	if err := yaml.Unmarshal([]byte(data), &out); err != nil {
		t.Fatalf("ConfigMap %s %s: %v", configMap, file, err)
	}
	return out
}

// secretFile returns "<secret>/<key>" for the file at path in the container, from its
// Secret volume mounts, or "".
func secretFile(spec corev1.PodSpec, c corev1.Container, path string) string {
	for _, m := range c.VolumeMounts {
		dir := strings.TrimSuffix(m.MountPath, "/") + "/"
		if !strings.HasPrefix(path, dir) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if dir+it.Path == path {
					return v.Secret.SecretName + "/" + it.Key
				}
			}
		}
	}
	return ""
}

func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

// TestChatSignsInThroughMAS: the chat component runs Matrix Authentication Service
// as Synapse's authentication, with the identity provider as MAS's upstream: MAS is
// the OIDC client registered at Keycloak (redirect to its upstream callback,
// back-channel logout to its logout endpoint), trusts the workplace CA, reads every
// secret from a mounted Secret, and the delegation documents advertise it.
func TestChatSignsInThroughMAS(t *testing.T) {
	plans, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": readExample(t)}))
	if err != nil {
		t.Fatal(err)
	}
	objs := renderObjects(t, nil)
	const (
		base       = "https://auth.192.168.49.2.sslip.io/"
		issuer     = "https://id.192.168.49.2.sslip.io/realms/demo"
		providerID = "01JQ9Z8W5V3T2R1P0N4M6K7H8G"
	)

	// MAS: config, secrets, trust.
	mas := configFile(t, objs, "demo-synapse", "demo-synapse-mas", "config.yaml")
	if got := str(mas, "http", "public_base"); got != base {
		t.Errorf("MAS public_base %q, want %q", got, base)
	}
	providers, _ := mas["upstream_oauth2"].(map[string]any)["providers"].([]any)
	if len(providers) != 1 {
		t.Fatalf("MAS upstream providers: %v", providers)
	}
	up := providers[0].(map[string]any)
	if up["id"] != providerID || up["issuer"] != issuer || up["client_id"] != "synapse" {
		t.Errorf("MAS upstream provider %v, want id %s, issuer %s, client synapse", up, providerID, issuer)
	}
	if v, _ := mas["passwords"].(map[string]any)["enabled"].(bool); v {
		t.Error("MAS local passwords are enabled; sign-in must go through the identity provider only")
	}
	if got := str(mas, "matrix", "endpoint"); got != "http://demo-synapse-synapse:8008/" {
		t.Errorf("MAS reaches Synapse at %q", got)
	}
	var md appsv1.Deployment
	object(t, objs, "demo-synapse", "Deployment/demo-synapse-mas", &md)
	mspec := md.Spec.Template.Spec
	mc := container(t, mspec, "mas")
	if !strings.HasPrefix(mc.Image, "ghcr.io/element-hq/matrix-authentication-service:") {
		t.Errorf("MAS image %q", mc.Image)
	}
	file, _ := env(mc, "SSL_CERT_FILE")
	if file == "" || caMount(mspec, mc, "demo-tls", "ca.crt") != file {
		t.Errorf("MAS SSL_CERT_FILE %q is not ca.crt of Secret demo-tls (mounted at %q)", file, caMount(mspec, mc, "demo-tls", "ca.crt"))
	}
	secretKeys := map[string]string{}
	for _, s := range plans[0].Secrets {
		for k, g := range s.Keys {
			secretKeys[s.Name+"/"+k] = g.Format
		}
	}
	keyFiles := []string{str(up, "client_secret_file"), str(mas, "database", "password_file"), str(mas, "matrix", "secret_file"), str(mas, "secrets", "encryption_file")}
	for _, k := range mas["secrets"].(map[string]any)["keys"].([]any) {
		keyFiles = append(keyFiles, str(k.(map[string]any), "key_file"))
	}
	wantFormat := map[string]string{
		"demo-synapse-mas/encryption":  "hex",
		"demo-synapse-mas/signing-rsa": "rsa",
		"demo-synapse-mas/signing-ec":  "ecdsa-p256",
	}
	sawRSA := false
	for _, f := range keyFiles {
		ref := secretFile(mspec, mc, f)
		if ref == "" {
			t.Errorf("MAS reads %q, which no Secret volume provides", f)
			continue
		}
		format, generated := secretKeys[ref]
		if !generated {
			t.Errorf("MAS reads %q from %s, which the plan does not generate", f, ref)
		}
		if want, ok := wantFormat[ref]; ok && format != want {
			t.Errorf("%s is generated as %q, want %q", ref, format, want)
		}
		sawRSA = sawRSA || format == "rsa"
	}
	if !sawRSA {
		t.Error("MAS has no RSA signing key (OIDC requires RS256)")
	}
	if strings.Contains(objs["demo-synapse"]["ConfigMap/demo-synapse-mas"], "BEGIN") {
		t.Error("MAS config contains key material")
	}

	// Synapse delegates to MAS with the same shared secret, and has no OIDC client.
	hs := configFile(t, objs, "demo-synapse", "demo-synapse-synapse", "homeserver.yaml")
	msc, _ := hs["matrix_authentication_service"].(map[string]any)
	if msc["enabled"] != true || msc["endpoint"] != "http://demo-synapse-mas:8080/" {
		t.Errorf("Synapse matrix_authentication_service = %v", msc)
	}
	if _, ok := hs["oidc_providers"]; ok {
		t.Error("Synapse still has its own oidc_providers (it refuses them with MAS)")
	}
	var sd appsv1.Deployment
	object(t, objs, "demo-synapse", "Deployment/demo-synapse-synapse", &sd)
	sc := container(t, sd.Spec.Template.Spec, "synapse")
	if a, b := secretFile(sd.Spec.Template.Spec, sc, str(msc, "secret_path")), secretFile(mspec, mc, str(mas, "matrix", "secret_file")); a == "" || a != b {
		t.Errorf("Synapse reads the MAS secret from %q, MAS from %q", a, b)
	}

	// Keycloak registers MAS's upstream callback and back-channel logout.
	client := realmClients(t, objs)["synapse"]
	if uris, _ := client["redirectUris"].([]any); len(uris) != 1 || uris[0] != base+"upstream/callback/"+providerID {
		t.Errorf("synapse client redirectUris %v, want MAS's upstream callback", client["redirectUris"])
	}
	attrs, _ := client["attributes"].(map[string]any)
	if attrs["backchannel.logout.url"] != base+"upstream/backchannel-logout/"+providerID || attrs["backchannel.logout.session.required"] != "true" {
		t.Errorf("synapse client attributes %v, want MAS's back-channel logout URL", attrs)
	}
	if client["frontchannelLogout"] != false {
		t.Error("synapse client has frontchannelLogout on: Keycloak then never sends it back-channel logout tokens")
	}

	// Routing: MAS's host, and its compatibility endpoints on the homeserver's host.
	var ing networkingv1.Ingress
	object(t, objs, "demo-synapse", "Ingress/demo-synapse", &ing)
	backend := map[string]string{}
	for _, r := range ing.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			backend[r.Host+p.Path] = p.Backend.Service.Name
		}
	}
	for _, path := range []string{"auth.192.168.49.2.sslip.io/", "matrix.192.168.49.2.sslip.io/_matrix/client/v3/login", "matrix.192.168.49.2.sslip.io/_matrix/client/v3/logout", "matrix.192.168.49.2.sslip.io/_matrix/client/v3/refresh"} {
		if backend[path] != "demo-synapse-mas" {
			t.Errorf("Ingress sends %s to %q, want demo-synapse-mas", path, backend[path])
		}
	}

	// .well-known/matrix/client advertises MAS (MSC2965) as Synapse would.
	wk := configFile(t, objs, "demo-synapse", "demo-synapse-element-nginx", "well-known-client")
	auth, _ := wk["org.matrix.msc2965.authentication"].(map[string]any)
	if auth["issuer"] != base || auth["account"] != base+"account/" {
		t.Errorf(".well-known/matrix/client msc2965 = %v, want issuer %s", auth, base)
	}
}

// TestLogoutURLsReachTheIdentityProvider: a component's back-channel logout path
// becomes the Keycloak client's back-channel URL (with frontchannelLogout off), a
// front-channel path its front-channel URL; clients without either keep the old
// settings.
func TestLogoutURLsReachTheIdentityProvider(t *testing.T) {
	clients := realmClients(t, renderObjects(t, nil))
	nc := clients["nextcloud"]
	if got := nc["attributes"].(map[string]any)["backchannel.logout.url"]; got != "https://files.192.168.49.2.sslip.io/apps/user_oidc/backchannel-logout/SSO" {
		t.Errorf("nextcloud back-channel logout URL %v", got)
	}
	if nc["frontchannelLogout"] != false {
		t.Error("nextcloud client has frontchannelLogout on")
	}
	jitsi := clients["jitsi"]
	if _, ok := jitsi["attributes"].(map[string]any)["backchannel.logout.url"]; ok || jitsi["frontchannelLogout"] != true {
		t.Errorf("jitsi client (no logout endpoint upstream) changed: %v", jitsi)
	}

	// A component with a front-channel logout page (none of the built-in ones has
	// one upstream) gets it registered with front-channel logout on.
	clients = realmClients(t, renderObjectsFromRepo(t, map[string]string{
		"workplace.yaml":                  readExample(t),
		"components/jitsi/component.yaml": componentOverride(t, "jitsi", "    postLogoutRedirectPaths: [/]\n", "    postLogoutRedirectPaths: [/]\n    frontchannelLogoutPath: /logout\n"),
	}))
	jitsi = clients["jitsi"]
	if got := jitsi["attributes"].(map[string]any)["frontchannel.logout.url"]; got != "https://meet.192.168.49.2.sslip.io/logout" || jitsi["frontchannelLogout"] != true {
		t.Errorf("jitsi client with a front-channel logout path: url %v, frontchannelLogout %v", got, jitsi["frontchannelLogout"])
	}
}

// nativeOIDCComponent is the built-in chat component switched to Synapse's own OIDC
// client (no MAS), as a workplace repository would override it.
func nativeOIDCComponent(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../components/synapse/component.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for from, to := range map[string]string{
		"    host: auth\n    redirectPaths: [/upstream/callback/01JQ9Z8W5V3T2R1P0N4M6K7H8G]\n    backchannelLogoutPath: /upstream/backchannel-logout/01JQ9Z8W5V3T2R1P0N4M6K7H8G\n": "    host: matrix\n    redirectPaths: [/_synapse/client/oidc/callback]\n    backchannelLogoutPath: /_synapse/client/oidc/backchannel_logout\n",
		"    mas:\n      enabled: true\n": "    mas:\n      enabled: false\n",
	} {
		if !strings.Contains(s, from) {
			t.Fatalf("components/synapse/component.yaml has no %q", from)
		}
		s = strings.Replace(s, from, to, 1)
	}
	return s
}

// TestSynapseNativeOIDCTrustsWorkplaceCA: without MAS, Synapse is the OIDC client
// itself; its client (discovery, token, JWKS, userinfo) trusts the workplace CA,
// password login stays off, and Keycloak registers Synapse's callback and
// back-channel logout endpoint.
func TestSynapseNativeOIDCTrustsWorkplaceCA(t *testing.T) {
	objs := renderObjectsFromRepo(t, map[string]string{
		"workplace.yaml":                    readExample(t),
		"components/synapse/component.yaml": nativeOIDCComponent(t),
	})
	if _, ok := objs["demo-synapse"]["Deployment/demo-synapse-mas"]; ok {
		t.Error("MAS is deployed with mas.enabled false")
	}
	hs := configFile(t, objs, "demo-synapse", "demo-synapse-synapse", "homeserver.yaml")
	providers, _ := hs["oidc_providers"].([]any)
	if len(providers) != 1 || str(providers[0].(map[string]any), "issuer") != "https://id.192.168.49.2.sslip.io/realms/demo" {
		t.Fatalf("Synapse oidc_providers %v", hs["oidc_providers"])
	}
	if hs["password_config"].(map[string]any)["enabled"] != false {
		t.Error("password login is on")
	}
	var d appsv1.Deployment
	object(t, objs, "demo-synapse", "Deployment/demo-synapse-synapse", &d)
	spec := d.Spec.Template.Spec
	c := container(t, spec, "synapse")
	if file, _ := env(c, "SSL_CERT_FILE"); file == "" || caMount(spec, c, "demo-tls", "ca.crt") != file {
		t.Errorf("SSL_CERT_FILE %q is not ca.crt of Secret demo-tls", file)
	}
	if got := secretFile(spec, c, str(providers[0].(map[string]any), "client_secret_path")); got != "demo-synapse-oidc/client-secret" {
		t.Errorf("client_secret_path reads %q", got)
	}
	client := realmClients(t, objs)["synapse"]
	if uris, _ := client["redirectUris"].([]any); len(uris) != 1 || uris[0] != "https://matrix.192.168.49.2.sslip.io/_synapse/client/oidc/callback" {
		t.Errorf("synapse client redirectUris %v", client["redirectUris"])
	}
	if got := client["attributes"].(map[string]any)["backchannel.logout.url"]; got != "https://matrix.192.168.49.2.sslip.io/_synapse/client/oidc/backchannel_logout" {
		t.Errorf("synapse client back-channel logout URL %v", got)
	}
}

// TestBadLogoutPathsAndKeyGenerators: a logout path that is not a path, or a key
// generator the secrets package cannot run, is refused with file and field before
// anything is planned.
func TestBadLogoutPathsAndKeyGenerators(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		want           []string
	}{
		{"back-channel path without /", "backchannelLogoutPath: /upstream", "backchannelLogoutPath: upstream",
			[]string{"components/synapse/component.yaml", "spec.oidcClient.backchannelLogoutPath", "must start with /"}},
		{"front-channel path without /", "    publicClient: false\n", "    publicClient: false\n    frontchannelLogoutPath: logout\n",
			[]string{"components/synapse/component.yaml", "spec.oidcClient.frontchannelLogoutPath", "must start with /"}},
		{"short RSA key", "signing-rsa: {format: rsa}", "signing-rsa: {format: rsa, length: 1024}",
			[]string{"components/synapse/component.yaml", "spec.secrets[1].keys.signing-rsa.length", "at least 2048 bits"}},
		{"sized EC key", "signing-ec: {format: ecdsa-p256}", "signing-ec: {format: ecdsa-p256, length: 32}",
			[]string{"components/synapse/component.yaml", "spec.secrets[1].keys.signing-ec.length", "fixed size"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := buildAll(t, repoFS(map[string]string{
				"workplace.yaml":                    readExample(t),
				"components/synapse/component.yaml": componentOverride(t, "synapse", tc.from, tc.to),
			}))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
