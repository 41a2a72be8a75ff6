package cluster

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// EnvKubeconfig names the environment variable that points the tests at an
// existing cluster (for example minikube) instead of a local control plane.
const EnvKubeconfig = "PLATZWART_E2E_KUBECONFIG"

// startTimeout bounds building and starting the control plane for tests. The
// first build on a 2-core machine takes about ten minutes.
const startTimeout = 30 * time.Minute

// testEnv is the control plane of one test binary. It is started by the first
// FromTest and stopped when RunTests returns or the binary is interrupted.
type testEnv struct {
	ctx    context.Context // cancelled on shutdown, aborts a start in progress
	cancel context.CancelFunc
	opts   Options

	mu      sync.Mutex
	started bool
	cluster *Cluster
	err     error
}

// current is the control plane of the running test binary. It is the only
// package-level mutable state: RunTests sets it for the duration of m.Run so
// that FromTest can find it, as a test binary has exactly one TestMain.
var current struct {
	sync.Mutex
	env *testEnv
}

// RunTests runs the tests of a package against one control plane, started the
// first time a test calls [FromTest] and stopped when the tests are done, and
// returns the exit code for os.Exit:
//
//	func TestMain(m *testing.M) { os.Exit(cluster.RunTests(m)) }
//
// On SIGINT or SIGTERM it stops the control plane and exits. When tests fail,
// it prints the run directory with the components' logs and keeps it;
// otherwise it removes it. If PLATZWART_E2E_KUBECONFIG is set, the tests use
// that cluster and nothing is started.
func RunTests(m *testing.M) (code int) {
	return RunTestsWith(m, Options{})
}

// RunTestsWith is RunTests with a control plane started with opts (see Options;
// the scale benchmarks lift the components' client rate limits).
func RunTestsWith(m *testing.M, opts Options) (code int) {
	env := &testEnv{opts: opts}
	env.ctx, env.cancel = context.WithCancel(context.Background())
	current.Lock()
	current.env = env
	current.Unlock()
	defer func() {
		current.Lock()
		current.env = nil
		current.Unlock()
	}()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-signals:
			signal.Stop(signals) // a second signal kills the binary at once
			fmt.Fprintf(os.Stderr, "e2e/cluster: %v: stopping the control plane\n", sig)
			env.shutdown(false)
			os.Exit(1)
		case <-done:
		}
	}()
	defer func() {
		signal.Stop(signals)
		close(done)
		if r := recover(); r != nil {
			env.shutdown(false)
			panic(r)
		}
		env.shutdown(code == 0)
	}()

	// Build before m.Run, where the -timeout alarm starts: the first build
	// takes several minutes and must not count against the tests.
	if os.Getenv(EnvKubeconfig) == "" {
		if _, err := Build(env.ctx, env.opts); err != nil {
			fmt.Fprintf(os.Stderr, "e2e/cluster: %v\n", err)
			return 1
		}
	}
	return m.Run()
}

// FromTest returns the control plane of the test binary, starting it on first
// use; the test fails if it cannot be started. The test package must call
// [RunTests] from TestMain.
func FromTest(t testing.TB) *Cluster {
	t.Helper()
	current.Lock()
	env := current.env
	current.Unlock()
	if env == nil {
		t.Fatal("e2e/cluster: no control plane: call os.Exit(cluster.RunTests(m)) from TestMain")
	}
	c, err := env.get()
	if err != nil {
		t.Fatalf("e2e/cluster: %v", err)
	}
	return c
}

// get starts the control plane, or attaches to PLATZWART_E2E_KUBECONFIG, once.
func (e *testEnv) get() (*Cluster, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started {
		e.started = true
		if path := os.Getenv(EnvKubeconfig); path != "" {
			e.cluster, e.err = Attach(path)
		} else {
			ctx, cancel := context.WithTimeout(e.ctx, startTimeout)
			e.cluster, e.err = Start(ctx, e.opts)
			cancel()
		}
	}
	return e.cluster, e.err
}

// shutdown stops the control plane, aborting a start in progress. The run
// directory is removed if the tests passed and kept otherwise.
func (e *testEnv) shutdown(passed bool) {
	e.cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.cluster
	if c == nil || c.runDir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.Stop(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e/cluster: %v\n", err)
	}
	if passed && err == nil {
		if err := os.RemoveAll(c.runDir); err != nil {
			fmt.Fprintf(os.Stderr, "e2e/cluster: remove run directory: %v\n", err)
		}
		return
	}
	fmt.Fprintf(os.Stderr, "e2e/cluster: control plane logs kept in %s\n", c.runDir)
}

// NewNamespace creates a namespace for a test, named after it, waits for its
// default service account (pods cannot be created before it exists) and
// deletes the namespace when the test ends.
func (c *Cluster) NewNamespace(t testing.TB) string {
	t.Helper()
	client, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	ctx := t.Context()
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(t.Name())},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		if err != nil && !isNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("wait for the default service account in %s: %v", ns.Name, err)
	}
	return ns.Name
}

// namespacePrefix turns a test name into a namespace name prefix: lower case
// letters, digits and dashes, short enough for the generated suffix.
func namespacePrefix(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 50 {
		name = strings.TrimRight(name[:50], "-")
	}
	if name == "" || name[0] < 'a' || name[0] > 'z' {
		name = "t-" + name
	}
	return name + "-"
}
