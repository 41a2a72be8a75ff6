package controller_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/controller"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/source"
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	os.Exit(cluster.RunTests(m))
}

// nextPort hands out JVB NodePorts, one per test workplace (NodePorts are cluster-wide).
var nextPort atomic.Int32

// jvbPorts keeps each namespace's port, so that every commit of a test's workplace
// carries the same one.
var jvbPorts sync.Map

func jvbPort(ns string) int32 {
	p, _ := jvbPorts.LoadOrStore(ns, 31000+nextPort.Add(1))
	return p.(int32)
}

// gitRepo is a repository on a Git server on loopback, changed with the git CLI.
type gitRepo struct {
	t    testing.TB
	srv  *gittestserver.GitServer
	url  string
	work string
}

func newGitRepo(t testing.TB, workplace string) *gitRepo {
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
	r := &gitRepo{t: t, srv: srv, url: srv.HTTPAddress() + "/workplaces.git", work: t.TempDir()}
	r.git("clone", "--branch", "main", r.url, ".")
	r.git("config", "user.email", "ops@example.org")
	r.git("config", "user.name", "ops")
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.CommandContext(r.t.Context(), "git", args...)
	cmd.Dir = r.work
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// push commits workplace.yaml with the content and pushes; it returns the commit.
func (r *gitRepo) push(content, message string) string {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.work, "workplace.yaml"), []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.git("commit", "-am", message)
	r.git("push", "origin", "main")
	return r.git("rev-parse", "HEAD")
}

// workplaceDoc is the example workplace in its own namespace with its own JVB port.
func workplaceDoc(t testing.TB, ns string, replace map[string]string) string {
	t.Helper()
	data, err := os.ReadFile("../../examples/workplace/workplace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), "namespace: demo", "namespace: "+ns, 1)
	// Node ports are cluster-wide and the tests run in parallel: each workplace gets
	// its own (derived ones may collide between random namespace names).
	jvb := jvbPort(ns)
	mail := 32000 + 3*(jvb-31000)
	s = strings.Replace(s, "  values:\n", fmt.Sprintf("  values:\n    jitsi: {jvb: {port: %d}}\n    stalwart: {mailService: {nodePorts: {smtp: %d, submissions: %d, imaps: %d}}}\n",
		jvb, mail, mail+1, mail+2), 1)
	for from, to := range replace {
		if !strings.Contains(s, from) {
			t.Fatalf("example has no %q", from)
		}
		s = strings.Replace(s, from, to, 1)
	}
	return s
}

// runController starts the controller against the test cluster until the test ends.
func runController(t testing.TB, c *cluster.Cluster, opts controller.Options) {
	t.Helper()
	startController(t, c, opts)
}

// client returns a client that reads Workplaces.
func workplaceClient(t testing.TB, c *cluster.Cluster) client.Client {
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

// waitWorkplace polls the Workplace until cond holds.
func waitWorkplace(t *testing.T, cl client.Client, ns, name, what string, timeout time.Duration, cond func(w *v1alpha1.Workplace) bool) *v1alpha1.Workplace {
	t.Helper()
	var w v1alpha1.Workplace
	start := time.Now()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &w); err != nil {
			return false, nil
		}
		return cond(&w), nil
	})
	if err != nil {
		t.Fatalf("waiting for workplace %s/%s: %s: %v; conditions: %+v", ns, name, what, err, w.Status.Conditions)
	}
	t.Logf("workplace %s/%s: %s after %s", ns, name, what, time.Since(start).Round(time.Millisecond))
	return &w
}

func readyAt(revision string) func(w *v1alpha1.Workplace) bool {
	return func(w *v1alpha1.Workplace) bool {
		c := meta.FindStatusCondition(w.Status.Conditions, "Ready")
		return c != nil && c.Status == "True" && strings.HasSuffix(w.Status.LastAppliedRevision, revision)
	}
}

func notReady(w *v1alpha1.Workplace) bool {
	c := meta.FindStatusCondition(w.Status.Conditions, "Ready")
	return c != nil && c.Status == "False"
}

// freeAddr returns a free loopback address.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// sendGitHubPush posts a signed GitHub push event for commit, retrying until the
// receiver listens.
func sendGitHubPush(t testing.TB, addr string, secret []byte, commit string) {
	t.Helper()
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":%q}`, commit))
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	var status int
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/hook", bytes.NewReader(body))
		if err != nil {
			return false, err
		}
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", sig)
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
	if status/100 != 2 {
		t.Fatalf("webhook answered %d", status)
	}
}

// revisionsOf returns the Helm revision of each component of a workplace.
func revisionsOf(t testing.TB, c *cluster.Cluster, ns string) map[string]int {
	t.Helper()
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath()})
	if err != nil {
		t.Fatal(err)
	}
	states, err := release.New(kc, release.Options{}).Status(t.Context(), ns, "demo")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, s := range states {
		out[s.Component] = s.Revision
	}
	return out
}

// TestGitOpsLoop: the controller applies the repository, a push plus webhook makes a
// one-value change Ready and moves the delivery metrics, a bad commit changes nothing
// and says why with file and field, the next good commit recovers, and Git going away
// leaves the workplace running with a condition that explains.
func TestGitOpsLoop(t *testing.T) {
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	repo := newGitRepo(t, workplaceDoc(t, ns, nil))
	first := repo.git("rev-parse", "HEAD")
	secret := []byte("webhook-secret")
	hook := freeAddr(t)
	reg := prometheus.NewRegistry()
	runController(t, c, controller.Options{
		Name:          "loop",
		Source:        source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval:      time.Hour, // only the webhook triggers fetches after the first
		WebhookAddr:   hook,
		WebhookSecret: secret,
		Registry:      reg,
	})
	cl := workplaceClient(t, c)
	waitWorkplace(t, cl, ns, "demo", "Ready at the first commit", 3*time.Minute, readyAt(first))

	// A one-value change: push, webhook, Ready.
	second := repo.push(workplaceDoc(t, ns, map[string]string{"dataPolicy: Retain": "dataPolicy: Retain\n  routing: {ingressClassName: other}"}), "another ingress class")
	pushed := time.Now()
	sendGitHubPush(t, hook, secret, second)
	w := waitWorkplace(t, cl, ns, "demo", "Ready at the second commit", 2*time.Minute, readyAt(second))
	t.Logf("push → Ready: %s", time.Since(pushed).Round(time.Millisecond))
	if got := metricValue(t, reg, "platzwart_deployments_total", map[string]string{"namespace": ns, "workplace": "demo", "result": "success"}); got != 2 {
		t.Errorf("platzwart_deployments_total{result=success} = %v, want 2", got)
	}
	if len(w.Status.History) != 2 || !w.Status.History[1].Succeeded {
		t.Errorf("history: %+v", w.Status.History)
	}
	good := revisionsOf(t, c, ns)

	// A bad commit: nothing changes, Ready=False names file and field.
	bad := repo.push(workplaceDoc(t, ns, map[string]string{"video: jitsi ": "video: jitsy "}), "typo")
	sendGitHubPush(t, hook, secret, bad)
	w = waitWorkplace(t, cl, ns, "demo", "not Ready at the bad commit", time.Minute, func(w *v1alpha1.Workplace) bool {
		return notReady(w) && strings.HasSuffix(w.Status.LastAttemptedRevision, bad)
	})
	msg := meta.FindStatusCondition(w.Status.Conditions, "Ready").Message
	for _, want := range []string{"workplace.yaml", `Workplace "demo"`, "spec.components.video", `unknown component "jitsy"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("Ready message lacks %q: %s", want, msg)
		}
	}
	if !strings.HasSuffix(w.Status.LastAppliedRevision, second) {
		t.Errorf("last applied revision %s, want the second commit", w.Status.LastAppliedRevision)
	}
	if after := revisionsOf(t, c, ns); fmt.Sprint(after) != fmt.Sprint(good) {
		t.Errorf("a bad commit changed releases: %v → %v", good, after)
	}

	// The next good commit recovers.
	fixed := repo.push(workplaceDoc(t, ns, map[string]string{"dataPolicy: Retain": "dataPolicy: Retain\n  routing: {ingressClassName: other}"}), "fix typo")
	sendGitHubPush(t, hook, secret, fixed)
	waitWorkplace(t, cl, ns, "demo", "Ready after the fix", 2*time.Minute, readyAt(fixed))

	// Git unreachable: the workplace keeps running, SourceReady explains.
	repo.srv.StopHTTP()
	sendGitHubPush(t, hook, secret, fixed)
	w = waitWorkplace(t, cl, ns, "demo", "SourceReady=False", time.Minute, func(w *v1alpha1.Workplace) bool {
		c := meta.FindStatusCondition(w.Status.Conditions, controller.ConditionSourceReady)
		return c != nil && c.Status == "False"
	})
	if c := meta.FindStatusCondition(w.Status.Conditions, "Ready"); c == nil || c.Status != "True" {
		t.Errorf("Ready after Git went away: %+v; the last good state must keep running", c)
	}
}

// metricValue returns the value of a counter or gauge of a registry with exactly
// these labels, or -1 when there is none.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
		}
	}
	return -1
}
