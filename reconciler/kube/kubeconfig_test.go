package kube_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/kube"
)

func TestMain(m *testing.M) { os.Exit(cluster.RunTests(m)) }

// secretToken is the token of the kubeconfigs of the refusal tests: no error may
// show it.
const secretToken = "s3cr3t-t0ken-never-printed"

// inlineKubeconfig returns the test cluster's kubeconfig the way an operator puts
// one into a Secret: loaded, every file reference flattened into inline data,
// written out.
func inlineKubeconfig(t *testing.T, c *cluster.Cluster) []byte {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(c.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		t.Fatal(err)
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestFromKubeconfigReachesTheCluster builds a Cluster from kubeconfig bytes with
// inline certificates and lists namespaces through its clientset, its
// controller-runtime client and Helm's getter, with Connect's rate limits, the
// remote timeout, and WrapConfig seeing every request.
func TestFromKubeconfigReachesTheCluster(t *testing.T) {
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	var requests atomic.Int32
	wrap := func(cfg *rest.Config) *rest.Config {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripper(func(r *http.Request) (*http.Response, error) {
				requests.Add(1)
				return rt.RoundTrip(r)
			})
		})
		return cfg
	}
	kc, err := kube.FromKubeconfig(inlineKubeconfig(t, c), kube.Options{WrapConfig: wrap})
	if err != nil {
		t.Fatal(err)
	}
	if kc.Config.QPS != kube.DefaultQPS || kc.Config.Burst != kube.DefaultBurst || kc.Config.Timeout != kube.DefaultRemoteTimeout {
		t.Errorf("QPS %v, burst %d, timeout %s; want %d, %d, %s", kc.Config.QPS, kc.Config.Burst, kc.Config.Timeout, kube.DefaultQPS, kube.DefaultBurst, kube.DefaultRemoteTimeout)
	}
	if w := kc.WatchConfig(); w.Timeout != 0 || w.Host != kc.Config.Host {
		t.Errorf("WatchConfig: timeout %s host %q; want none and %q", w.Timeout, w.Host, kc.Config.Host)
	}

	list, err := kc.Clientset.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasNamespace(list.Items, ns) {
		t.Errorf("clientset: namespace %s not listed", ns)
	}
	var viaClient corev1.NamespaceList
	if err := kc.Client.List(t.Context(), &viaClient); err != nil {
		t.Fatal(err)
	}
	if !hasNamespace(viaClient.Items, ns) {
		t.Errorf("controller-runtime client: namespace %s not listed", ns)
	}
	// Helm asks the getter's kubeconfig loader for the release namespace.
	got, _, err := kc.Getter(ns).ToRawKubeConfigLoader().Namespace()
	if err != nil || got != ns {
		t.Errorf("getter namespace = %q, %v; want %q", got, err, ns)
	}
	if _, err := kc.Mapper.RESTMapping(corev1.SchemeGroupVersion.WithKind("Namespace").GroupKind()); err != nil {
		t.Errorf("REST mapper: %v", err)
	}
	if requests.Load() == 0 {
		t.Error("WrapConfig saw no request")
	}
}

// TestFromKubeconfigRefusesAFileReferenceUntilFlattened shows the difference an
// operator meets: the test cluster's kubeconfig with its CA in a file is refused,
// naming the field; flattened (kubectl config view --flatten) it connects.
func TestFromKubeconfigRefusesAFileReferenceUntilFlattened(t *testing.T) {
	c := cluster.FromTest(t)
	cfg, err := clientcmd.LoadFromFile(c.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	for _, cl := range cfg.Clusters {
		if err := os.WriteFile(caFile, cl.CertificateAuthorityData, 0o600); err != nil {
			t.Fatal(err)
		}
		cl.CertificateAuthority, cl.CertificateAuthorityData = caFile, nil
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kube.FromKubeconfig(data, kube.Options{}); err == nil || !strings.Contains(err.Error(), ".certificate-authority: reads a file on the controller") {
		t.Fatalf("kubeconfig with a CA file: %v; want a refusal naming certificate-authority", err)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if data, err = clientcmd.Write(*cfg); err != nil {
		t.Fatal(err)
	}
	kc, err := kube.FromKubeconfig(data, kube.Options{})
	if err != nil {
		t.Fatalf("flattened: %v", err)
	}
	if _, err := kc.Clientset.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("flattened: %v", err)
	}
}

// kubeconfig returns a kubeconfig with one inline cluster and user, changed by edit.
func kubeconfig(t *testing.T, edit func(*clientcmdapi.Config)) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["remote"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:6443"}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: secretToken}
	cfg.Contexts["remote"] = &clientcmdapi.Context{Cluster: "remote", AuthInfo: "admin"}
	cfg.CurrentContext = "remote"
	if edit != nil {
		edit(cfg)
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestFromKubeconfigRefusesWhatAControllerMustNotRun refuses, naming entry and
// field, every way a kubeconfig from a Secret could run a program or read a file
// on the controller, or skip TLS verification, and input that is no usable
// kubeconfig; no message shows the token.
func TestFromKubeconfigRefusesWhatAControllerMustNotRun(t *testing.T) {
	user := func(edit func(*clientcmdapi.AuthInfo)) []byte {
		return kubeconfig(t, func(c *clientcmdapi.Config) { edit(c.AuthInfos["admin"]) })
	}
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"exec": {user(func(u *clientcmdapi.AuthInfo) {
			u.Exec = &clientcmdapi.ExecConfig{Command: "/bin/sh", Args: []string{"-c", "touch /tmp/pwned"}, APIVersion: "client.authentication.k8s.io/v1", InteractiveMode: clientcmdapi.NeverExecInteractiveMode}
		}), `users["admin"].exec: runs a credential plugin`},
		"auth-provider": {user(func(u *clientcmdapi.AuthInfo) {
			u.AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc", Config: map[string]string{"cmd-path": "/bin/sh"}}
		}), `users["admin"].auth-provider: runs a credential plugin`},
		"client-certificate": {user(func(u *clientcmdapi.AuthInfo) { u.ClientCertificate = "/etc/platzwart/tls.crt" }),
			`users["admin"].client-certificate: reads a file on the controller`},
		"client-key": {user(func(u *clientcmdapi.AuthInfo) { u.ClientKey = "/etc/platzwart/tls.key" }),
			`users["admin"].client-key: reads a file on the controller`},
		"tokenFile": {user(func(u *clientcmdapi.AuthInfo) { u.TokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token" }),
			`users["admin"].tokenFile: reads a file on the controller`},
		"certificate-authority": {kubeconfig(t, func(c *clientcmdapi.Config) {
			c.Clusters["remote"].CertificateAuthority = "/etc/ssl/certs/ca-certificates.crt"
			c.Clusters["remote"].CertificateAuthorityData = nil
		}), `clusters["remote"].certificate-authority: reads a file on the controller`},
		"insecure-skip-tls-verify": {kubeconfig(t, func(c *clientcmdapi.Config) {
			c.Clusters["remote"].InsecureSkipTLSVerify = true
			c.Clusters["remote"].CertificateAuthorityData = nil
		}), `clusters["remote"].insecure-skip-tls-verify`},
		"exec of a user no context uses": {kubeconfig(t, func(c *clientcmdapi.Config) {
			c.AuthInfos["other"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{Command: "gke-gcloud-auth-plugin", APIVersion: "client.authentication.k8s.io/v1"}}
		}), `users["other"].exec`},
		"garbage":              {[]byte("token: " + secretToken + "\n\x00\x01: ["), "kubeconfig: not a kubeconfig"},
		"yaml of another kind": {[]byte("apiVersion: v1\nkind: Secret\ndata: {token: " + secretToken + "}\n"), "kubeconfig: not a kubeconfig"},
		"wrong field type":     {[]byte("apiVersion: v1\nkind: Config\nclusters: " + secretToken + "\n"), "kubeconfig: not a kubeconfig"},
		"empty":                {nil, "kubeconfig: empty"},
		"no current context":   {kubeconfig(t, func(c *clientcmdapi.Config) { c.CurrentContext = "" }), "kubeconfig: no current-context"},
		"unknown context":      {kubeconfig(t, func(c *clientcmdapi.Config) { c.CurrentContext = "elsewhere" }), `kubeconfig: context "elsewhere" not found`},
		"no server":            {kubeconfig(t, func(c *clientcmdapi.Config) { c.Clusters["remote"].Server = "" }), "kubeconfig: "},
	} {
		t.Run(name, func(t *testing.T) {
			kc, err := kube.FromKubeconfig(tc.data, kube.Options{})
			if err == nil {
				t.Fatalf("accepted (host %s); want an error containing %q", kc.Config.Host, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q; want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secretToken) {
				t.Errorf("error shows the token: %q", err)
			}
		})
	}
	// The same kubeconfig without the refused parts is accepted.
	if _, err := kube.FromKubeconfig(kubeconfig(t, nil), kube.Options{}); err != nil {
		t.Errorf("inline kubeconfig: %v", err)
	}
	// Options.Context picks another context.
	other := kubeconfig(t, func(c *clientcmdapi.Config) {
		c.Clusters["second"] = &clientcmdapi.Cluster{Server: "https://127.0.0.2:6443"}
		c.Contexts["second"] = &clientcmdapi.Context{Cluster: "second", AuthInfo: "admin"}
	})
	kc, err := kube.FromKubeconfig(other, kube.Options{Context: "second"})
	if err != nil || kc.Config.Host != "https://127.0.0.2:6443" {
		t.Errorf("context second: %v; want host https://127.0.0.2:6443", err)
	}
}

// TestFromKubeconfigUnreachableFailsWithinTheTimeout: a closed port fails at once,
// and a server that accepts connections but never answers fails within
// Options.Timeout instead of hanging.
func TestFromKubeconfigUnreachableFailsWithinTheTimeout(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never answered
		}
	}()

	const timeout = time.Second
	for name, addr := range map[string]string{"closed port": closedAddr, "silent server": silent.Addr().String()} {
		t.Run(name, func(t *testing.T) {
			data := kubeconfig(t, func(c *clientcmdapi.Config) {
				c.Clusters["remote"].Server = "https://" + addr
				c.Clusters["remote"].CertificateAuthorityData = nil
			})
			kc, err := kube.FromKubeconfig(data, kube.Options{Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			start := time.Now()
			_, err = kc.Clientset.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			took := time.Since(start)
			t.Logf("failed after %s: %v", took.Round(time.Millisecond), err)
			if err == nil {
				t.Fatal("listing namespaces succeeded")
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) || took > 5*timeout {
				t.Errorf("failed after %s; want within about %s", took, timeout)
			}
			if strings.Contains(err.Error(), secretToken) {
				t.Errorf("error shows the token: %q", err)
			}
		})
	}
}

func TestKubeconfigFromSecret(t *testing.T) {
	secret := func(data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "remote"}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	for name, tc := range map[string]struct {
		data    map[string]string
		key     string
		want    string
		wantErr string
	}{
		"value first":         {data: map[string]string{"value": "a", "value.yaml": "b"}, want: "a"},
		"value.yaml fallback": {data: map[string]string{"value.yaml": "b"}, want: "b"},
		"named key":           {data: map[string]string{"value": "a", "kubeconfig": "c"}, key: "kubeconfig", want: "c"},
		"named key missing":   {data: map[string]string{"value": "a"}, key: "kubeconfig", wantErr: `secret tenant/remote: no key "kubeconfig"`},
		"no default key":      {data: map[string]string{"other": "a"}, wantErr: `secret tenant/remote: no key "value" or "value.yaml"`},
		"empty value":         {data: map[string]string{"value": ""}, wantErr: `no key "value" or "value.yaml"`},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := kube.KubeconfigFromSecret(secret(tc.data), tc.key)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v; want %q", err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || string(got) != tc.want):
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestConnectRateLimits: Options.QPS and Burst reach the rest.Config, 0 keeps the
// defaults; Connect sets no timeout unless asked.
func TestConnectRateLimits(t *testing.T) {
	c := cluster.FromTest(t)
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath()})
	if err != nil {
		t.Fatal(err)
	}
	if kc.Config.QPS != kube.DefaultQPS || kc.Config.Burst != kube.DefaultBurst || kc.Config.Timeout != 0 {
		t.Errorf("defaults: QPS %v burst %d timeout %s", kc.Config.QPS, kc.Config.Burst, kc.Config.Timeout)
	}
	kc, err = kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath(), QPS: 200, Burst: 400, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if kc.Config.QPS != 200 || kc.Config.Burst != 400 || kc.Config.Timeout != time.Minute {
		t.Errorf("set: QPS %v burst %d timeout %s; want 200, 400, 1m", kc.Config.QPS, kc.Config.Burst, kc.Config.Timeout)
	}
	kc, err = kube.FromKubeconfig(inlineKubeconfig(t, c), kube.Options{Timeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	if kc.Config.Timeout != 0 {
		t.Errorf("FromKubeconfig with Timeout -1: timeout %s; want none", kc.Config.Timeout)
	}
}

// TestDiscoveryGenerationCountsInvalidations: ResetMapper and an invalidation
// through Helm's getter (what Helm does after installing CRDs) both move the
// generation, so what was derived from discovery is derived again.
func TestDiscoveryGenerationCountsInvalidations(t *testing.T) {
	c := cluster.FromTest(t)
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath()})
	if err != nil {
		t.Fatal(err)
	}
	g0 := kc.DiscoveryGeneration()
	if _, err := kc.Mapper.RESTMapping(corev1.SchemeGroupVersion.WithKind("ConfigMap").GroupKind()); err != nil {
		t.Fatal(err)
	}
	if g := kc.DiscoveryGeneration(); g != g0 {
		t.Errorf("a mapping from a fresh cache moved the generation: %d → %d", g0, g)
	}
	kc.ResetMapper()
	g1 := kc.DiscoveryGeneration()
	if g1 == g0 {
		t.Error("ResetMapper did not move the generation")
	}
	dc, err := kc.Getter("default").ToDiscoveryClient()
	if err != nil {
		t.Fatal(err)
	}
	dc.Invalidate()
	if kc.DiscoveryGeneration() == g1 {
		t.Error("Invalidate through the getter did not move the generation")
	}
}

func hasNamespace(items []corev1.Namespace, name string) bool {
	for _, ns := range items {
		if ns.Name == name {
			return true
		}
	}
	return false
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
