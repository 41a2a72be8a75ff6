package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Timeouts of the start-up phases. They are generous because the machine may
// be busy with builds.
const (
	etcdTimeout      = 60 * time.Second
	apiserverTimeout = 120 * time.Second
	componentTimeout = 60 * time.Second
	nodesTimeout     = 120 * time.Second
)

// Cluster is a running control plane: one started by [Start] or an existing
// cluster attached with [Attach].
type Cluster struct {
	config     *rest.Config
	kubeconfig string
	runDir     string // empty for an attached cluster
	progress   io.Writer

	mu       sync.Mutex
	run      Run          // the pid file's content
	procs    []*component // in start order
	stopping bool
	stopped  chan struct{} // closed when Stop has finished
	stopErr  error
}

// Start builds the control plane if needed (see [Build]) and starts it: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok, on free
// loopback ports, with their logs in a new run directory under the state
// directory. It returns when the API server is ready, the kwok nodes are Ready
// and the kwok-volume StorageClass is the default one. Stop it with
// [Cluster.Stop].
//
// Before starting, Start stops leftovers of crashed runs (see [Reap]). A file
// lock serialises concurrent starts until the new control plane's ports are
// bound.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	bins, err := Build(ctx, opts)
	if err != nil {
		return nil, err
	}

	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	lock, err := lockFile(ctx, filepath.Join(opts.StateDir, "start.lock"), opts.Progress, "another control plane to start")
	if err != nil {
		return nil, err
	}
	locked := true
	unlock := func() {
		if locked {
			lock.unlock()
			locked = false
		}
	}
	defer unlock()

	reaped, err := Reap(ctx, opts, false)
	for _, r := range reaped {
		fmt.Fprintf(opts.Progress, "e2e/cluster: stopped the leftover control plane of a crashed run (logs kept in %s)\n", r.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("stop leftover control planes: %w", err)
	}
	if err := pruneRunDirs(opts.StateDir); err != nil {
		fmt.Fprintf(opts.Progress, "e2e/cluster: %v\n", err)
	}

	runDir, err := os.MkdirTemp(opts.StateDir, time.Now().Format("20060102-150405-"))
	if err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	owner, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	c := &Cluster{
		kubeconfig: filepath.Join(runDir, "kubeconfig"),
		runDir:     runDir,
		progress:   opts.Progress,
		stopped:    make(chan struct{}),
		run: Run{
			Dir:        runDir,
			Owner:      os.Getpid(),
			OwnerExe:   resolveExe(owner),
			Detached:   opts.Detached,
			Started:    time.Now(),
			Kubeconfig: filepath.Join(runDir, "kubeconfig"),
		},
	}
	s := &starter{c: c, bins: bins, opts: opts}
	if err := s.start(ctx, unlock); err != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if stopErr := c.Stop(stopCtx); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, fmt.Errorf("start control plane (logs in %s): %w", runDir, err)
	}
	return c, nil
}

// Attach uses the existing cluster of a kubeconfig file, with its current
// context. Stop does nothing for such a cluster.
func Attach(kubeconfig string) (*Cluster, error) {
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	return &Cluster{config: cfg, kubeconfig: kubeconfig, progress: io.Discard}, nil
}

// restConfig loads a kubeconfig file and raises the client-side rate limits,
// which are too low for tests.
func restConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.QPS = 100
	cfg.Burst = 200
	return cfg, nil
}

// Config returns a copy of the admin client configuration.
func (c *Cluster) Config() *rest.Config {
	return rest.CopyConfig(c.config)
}

// KubeconfigPath returns the path of the admin kubeconfig file.
func (c *Cluster) KubeconfigPath() string {
	return c.kubeconfig
}

// RunDir returns the run directory with the logs of the components, or "" for
// an attached cluster.
func (c *Cluster) RunDir() string {
	return c.runDir
}

// RESTClientGetter returns a RESTClientGetter for the cluster and a default
// namespace, as the Helm SDK's action.Configuration.Init wants it.
func (c *Cluster) RESTClientGetter(namespace string) genericclioptions.RESTClientGetter {
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig := c.kubeconfig
	flags.KubeConfig = &kubeconfig
	flags.Namespace = &namespace
	if c.runDir != "" {
		cacheDir := filepath.Join(c.runDir, "discovery-cache")
		flags.CacheDir = &cacheDir
	}
	return flags
}

// Stop stops the control plane: kwok, kube-scheduler, kube-controller-manager,
// then kube-apiserver (waiting for it to exit, SIGKILL after a grace period),
// then etcd. Each process group gets SIGTERM and, if it has not exited after
// its grace period or once ctx is done, SIGKILL. Stop may be called more than
// once and from several goroutines; later calls wait for the first and return
// its result. The run directory is left in place for its logs.
func (c *Cluster) Stop(ctx context.Context) error {
	if c.runDir == "" {
		return nil // attached: not ours to stop
	}
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		<-c.stopped
		return c.stopErr
	}
	c.stopping = true
	procs := slices.Clone(c.procs)
	c.mu.Unlock()

	var errs []error
	// The reverse start order is the stop order: etcd must outlive the
	// apiserver, which does not exit on SIGTERM without it.
	for _, p := range slices.Backward(procs) {
		errs = append(errs, terminate(ctx, p))
	}
	err := errors.Join(errs...)
	if err == nil && c.runDir != "" {
		if rmErr := os.Remove(filepath.Join(c.runDir, pidFileName)); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			err = fmt.Errorf("remove pid file: %w", rmErr)
		}
	}
	c.stopErr = err
	close(c.stopped)
	return err
}

// launch starts one component with its output going to <name>.log in the run
// directory, and records it in the pid file.
func (c *Cluster) launch(name, exe string, args ...string) (*component, error) {
	logPath := filepath.Join(c.runDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: open log file: %w", name, err)
	}
	defer logFile.Close() // the child has its own descriptor

	cmd := exec.Command(exe, args...)
	cmd.Dir = c.runDir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr(c.run.Detached)

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return nil, fmt.Errorf("start %s: the control plane is being stopped", name)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &component{
		name:    name,
		pid:     cmd.Process.Pid,
		exe:     resolveExe(exe),
		logPath: logPath,
		args:    append([]string{exe}, args...),
		done:    make(chan struct{}),
	}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	c.run.Processes = append(c.run.Processes, Process{Name: name, PID: p.pid, Exe: p.exe})
	if err := writeRun(c.run); err != nil {
		return p, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

// freePorts returns n distinct free TCP ports on the loopback interface.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func hostPort(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// RestartAPIServer stops kube-apiserver and starts it again with the same flags (etcd
// keeps the state), and returns when it answers /readyz. It is for fault tests: a
// reconcile whose API server goes away in the middle.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	if c.runDir == "" {
		return errors.New("restart kube-apiserver: not a local control plane")
	}
	c.mu.Lock()
	var old *component
	for _, p := range c.procs {
		if p.name == "kube-apiserver" && !p.exited() {
			old = p
		}
	}
	c.mu.Unlock()
	if old == nil {
		return errors.New("restart kube-apiserver: it is not running")
	}
	if err := terminate(ctx, old); err != nil {
		return fmt.Errorf("restart kube-apiserver: %w", err)
	}
	if _, err := c.launch("kube-apiserver", old.args[0], old.args[1:]...); err != nil {
		return fmt.Errorf("restart kube-apiserver: %w", err)
	}
	cs, err := kubernetes.NewForConfig(c.config)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, apiserverTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, nil
	})
}
