package monitoring_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/e2e/promcheck"
	"github.com/platzwart/platzwart/reconciler/controller"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/source"
)

// TestQueriesUseExportedMetrics renders the chart with the ServiceMonitor, the
// PrometheusRule and the dashboard on, takes every PromQL expression from the rules,
// the panels and the variable queries (dashboard variables substituted), parses each
// with Prometheus's parser, and checks that every metric it selects, and every label
// value it matches, is served on /metrics by a running controller: controller.Run, as
// `platzwart controller` runs it, on the metrics registry the manager serves, after it
// fetched a Git repository, reconciled a Workplace to Ready and received webhooks.
func TestQueriesUseExportedMetrics(t *testing.T) {
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	repo := newGitRepo(t, fmt.Sprintf(`apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: %s}
spec:
  domain: %s.example.org
  profile: minikube
  components: {chat: none, video: none, files: none, office: none}
`, ns, ns))
	metricsAddr, hookAddr := freeAddr(t), freeAddr(t)
	secret := []byte("monitoring-webhook-secret")
	runController(t, c, controller.Options{
		Name:          "monitoring",
		Source:        source.Options{URL: repo, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval:      time.Hour, // after the first fetch, only the webhook fetches
		MetricsAddr:   metricsAddr,
		ProbeAddr:     "0",
		WebhookAddr:   hookAddr,
		WebhookSecret: secret,
		// Registry nil: controller-runtime's metrics.Registry, which the manager
		// serves on MetricsAddr, as in a pod.
	})
	cl := workplaceClient(t, c)
	waitReady(t, cl, ns, "demo", 5*time.Minute)

	// One push the receiver accepts (the fetch it starts finds the revision unchanged)
	// and one with a wrong signature.
	if code := postPush(t, hookAddr, secret); code != http.StatusAccepted {
		t.Fatalf("signed push: %d, want 202", code)
	}
	if code := postPush(t, hookAddr, []byte("not-the-secret")); code != http.StatusUnauthorized {
		t.Fatalf("push with a wrong signature: %d, want 401", code)
	}
	var body []byte
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		body = scrape(t, metricsAddr)
		return value(t, body, source.MetricFetches, map[string]string{"result": "unchanged"}) >= 1, nil
	})
	if err != nil {
		t.Fatalf("the webhook's fetch was not counted as unchanged: %v\n%s", err, grep(body, "platzwart_source_"))
	}

	// The wiring: each new metric counts what happened.
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"platzwart_workplace_ready", map[string]string{"namespace": ns, "workplace": "demo"}, 1},
		{"platzwart_deployments_total", map[string]string{"namespace": ns, "workplace": "demo", "result": "success"}, 1},
		{"platzwart_helm_actions_total", map[string]string{"namespace": ns, "workplace": "demo", "action": "rollback"}, 0},
		{source.MetricFetches, map[string]string{"result": "success"}, 1},
		{source.MetricFetches, map[string]string{"result": "failure"}, 0},
		{"platzwart_webhook_receipts_total", map[string]string{"result": "accepted", "reason": "push"}, 1},
		{"platzwart_webhook_receipts_total", map[string]string{"result": "rejected", "reason": "wrong_secret"}, 1},
	} {
		if got := value(t, body, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	exported, err := promcheck.ParseText(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var manifests strings.Builder
	for _, d := range renderChart(t, allOn()) {
		manifests.WriteString(d)
		manifests.WriteString("\n---\n")
	}
	exprs, err := promcheck.FromManifests(manifests.String(), map[string]string{
		"namespace": ns, "workplace": "demo",
		"__rate_interval": "1m", "__interval": "30s", "__range": "1h",
	})
	if err != nil {
		t.Fatal(err)
	}
	rules, panels := 0, 0
	for _, x := range exprs {
		switch {
		case strings.HasPrefix(x.Where, "PrometheusRule"):
			rules++
		case strings.Contains(x.Where, " panel "):
			panels++
		}
	}
	if rules != len(wantAlerts) || panels < 25 {
		t.Errorf("%d rule and %d panel expressions found; want %d and at least 25", rules, panels, len(wantAlerts))
	}
	for _, p := range promcheck.Check(exprs, exported, promcheck.PrometheusTarget()) {
		t.Error(p)
	}

	// The dashboard shows every platzwart metric the controller exports.
	var used strings.Builder
	for _, x := range exprs {
		used.WriteString(x.Query)
	}
	unused := map[string]bool{}
	for _, name := range exported.Names() {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(name, "platzwart_") && !strings.Contains(used.String(), base) && !unused[base] {
			unused[base] = true
			t.Errorf("%s is exported but no panel or alert uses it", base)
		}
	}
	t.Logf("%d expressions (%d rules, %d panel targets) checked against %d exported series names", len(exprs), rules, panels, len(exported.Names()))
}

// newGitRepo serves a Git repository holding workplace.yaml on loopback and returns
// its URL.
func newGitRepo(t *testing.T, workplace string) string {
	t.Helper()
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.StopHTTP(); _ = os.RemoveAll(srv.Root()) })
	srv.AutoCreate()
	if err := srv.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	fixture := t.TempDir()
	if err := os.WriteFile(filepath.Join(fixture, "workplace.yaml"), []byte(workplace), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := srv.InitRepo(fixture, "main", "workplaces.git"); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git: %v", err)
	}
	return srv.HTTPAddress() + "/workplaces.git"
}

// runController runs controller.Run against the test cluster until the test ends.
func runController(t *testing.T, c *cluster.Cluster, opts controller.Options) {
	t.Helper()
	opts.Cluster = kube.Options{Kubeconfig: c.KubeconfigPath()}
	kc, err := kube.Connect(opts.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	if err := controller.InstallCRD(t.Context(), kc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- controller.Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("controller: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Error("controller did not stop within two minutes")
		}
	})
}

func workplaceClient(t *testing.T, c *cluster.Cluster) client.Client {
	t.Helper()
	s, err := controller.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.Config(), client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func waitReady(t *testing.T, cl client.Client, ns, name string, timeout time.Duration) {
	t.Helper()
	var w v1alpha1.Workplace
	start := time.Now()
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &w); err != nil {
			return false, nil
		}
		return meta.IsStatusConditionTrue(w.Status.Conditions, "Ready") && w.Status.LastAppliedRevision != "", nil
	})
	if err != nil {
		t.Fatalf("workplace %s/%s not Ready: %v; conditions %+v", ns, name, err, w.Status.Conditions)
	}
	t.Logf("workplace %s/%s Ready after %s", ns, name, time.Since(start).Round(time.Millisecond))
}

// freeAddr returns a free loopback address.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// postPush posts a GitHub push event for main signed with secret and returns the
// status, retrying until the receiver listens.
func postPush(t *testing.T, addr string, secret []byte) int {
	t.Helper()
	body := []byte(`{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567"}`)
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	var status int
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/hook", bytes.NewReader(body))
		if err != nil {
			return false, err
		}
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		status = resp.StatusCode
		return true, nil
	})
	if err != nil {
		t.Fatalf("webhook: %v", err)
	}
	return status
}

// scrape GETs /metrics as Prometheus would.
func scrape(t *testing.T, addr string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping /metrics: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// value returns the value of the counter or gauge series name with these labels (and
// maybe others) in an exposition, or -1 when there is none.
func value(t *testing.T, body []byte, name string, labels map[string]string) float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	f, ok := fams[name]
	if !ok {
		return -1
	}
series:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if got[k] != v {
				continue series
			}
		}
		return sampleValue(m)
	}
	return -1
}

func sampleValue(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

// grep returns the lines of an exposition that contain s, for failure messages.
func grep(body []byte, s string) string {
	var lines []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.Contains(l, s) {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
