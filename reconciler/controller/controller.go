// Package controller is platzwart's long-running GitOps controller: it fetches a Git
// repository of Workplace documents, applies them as Workplace resources, and
// reconciles each Workplace into its namespace with controller-runtime, reporting
// conditions, events and delivery metrics.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/check"
	"github.com/platzwart/platzwart/reconciler/delivery"
	"github.com/platzwart/platzwart/reconciler/guard"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/render"
	"github.com/platzwart/platzwart/reconciler/source"
	"github.com/platzwart/platzwart/reconciler/webhook"
)

// Options configure the controller; cmd/platzwart maps its flags onto them.
type Options struct {
	// Cluster says how to reach the API server.
	Cluster kube.Options
	// Name names this controller install: the source label on the Workplaces it
	// applies from Git and the leader election lease.
	Name string
	// Namespace is where the leader election Lease lives.
	Namespace string
	// Source is the Git repository; an empty URL runs without Git, reconciling
	// Workplaces created in the cluster by other means.
	Source source.Options
	// Path is the folder of the repository holding the Workplaces and the repository's
	// own capabilities/, components/, profiles/ and charts/.
	Path string
	// Interval is how often Git is polled.
	Interval time.Duration
	// Requeue is how often every Workplace is checked without a change (the periodic
	// check). A Workplace verified since and untouched by any watch event is
	// answered from the watch caches; drift is noticed by its watch event at once.
	Requeue time.Duration
	// FullResync is how long a Workplace is answered from the watch caches before a
	// periodic check compares it with the cluster in full anyway (default 1h).
	FullResync time.Duration
	// ClusterConcurrency bounds the full reconciles running against one cluster at
	// once (default Concurrency). The controller runs twice Concurrency workers, so
	// that one slow or unreachable cluster never holds all of them.
	ClusterConcurrency int
	// ConnectRemote builds the clients of another cluster from the kubeconfig of a
	// Workplace's spec.kubeConfig Secret.
	ConnectRemote func(kubeconfig []byte) (*kube.Cluster, error)
	// Pprof serves net/http/pprof at /debug/pprof/ on the metrics address.
	Pprof bool
	// WatchNamespaces limits the watches on the controller's own cluster to these
	// namespaces (its RBAC is bound only there); empty watches every namespace.
	WatchNamespaces []string
	// Selector limits the Workplaces this controller reconciles (scale-out by label).
	Selector labels.Selector
	// Concurrency bounds how many Workplaces are reconciled at once.
	Concurrency int
	// ReleaseParallelism bounds the releases acted on at once within a Workplace.
	ReleaseParallelism int
	// WebhookAddr serves the push webhook receiver at /hook when WebhookSecret is set.
	WebhookAddr string
	// WebhookSecret is the webhook token (GitLab) or HMAC key (GitHub, Gitea, Forgejo).
	WebhookSecret []byte
	// MetricsAddr serves Prometheus metrics ("0" disables).
	MetricsAddr string
	// ProbeAddr serves /healthz and /readyz ("0" disables).
	ProbeAddr string
	// LeaderElection makes only one replica act at a time.
	LeaderElection bool
	// ShutdownGrace is how long Helm actions in progress may finish after SIGTERM
	// (default 5m); the pod's terminationGracePeriodSeconds must exceed it.
	ShutdownGrace time.Duration
	// RetryInterval is the first retry delay of a failing Workplace (default 30s),
	// doubled per failure in a row.
	RetryInterval time.Duration
	// FunctionalChecks makes the controller run the checks of `platzwart check` after
	// successful reconciles and report them as the Functional condition.
	FunctionalChecks bool
	// CheckTimeout bounds each probe of those checks (default 5s).
	CheckTimeout time.Duration
	// WebhookTLSCert and WebhookTLSKey are PEM files; when set the webhook receiver
	// serves HTTPS.
	WebhookTLSCert, WebhookTLSKey string
	// Logger receives structured logs.
	Logger logr.Logger
	// Registry receives the metrics; nil uses controller-runtime's registry.
	Registry metrics.RegistererGatherer
}

// Scheme returns the scheme of the controller's client: client-go's types and the
// platzwart API.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Run runs the controller until ctx is done. An in-flight Helm action is allowed to
// finish (the manager's graceful shutdown waits for reconciles); a process killed
// harder leaves releases that the next run recovers.
func Run(ctx context.Context, opts Options) error {
	if opts.Name == "" {
		opts.Name = "platzwart"
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.Requeue <= 0 {
		opts.Requeue = 10 * time.Minute
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Selector == nil {
		opts.Selector = labels.Everything()
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 5 * time.Minute
	}
	if opts.ClusterConcurrency <= 0 {
		opts.ClusterConcurrency = opts.Concurrency
	}
	log := opts.Logger
	kc, err := kube.Connect(opts.Cluster)
	if err != nil {
		return err
	}
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	reg := opts.Registry
	if reg == nil {
		reg = metrics.Registry
	}
	m, err := delivery.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	sourceMetrics, err := source.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	webhookMetrics, err := webhook.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	cycleMetrics, err := newCycleMetrics(reg)
	if err != nil {
		return err
	}
	ms := metricsserver.Options{BindAddress: opts.MetricsAddr}
	if opts.Pprof {
		ms.ExtraHandlers = pprofHandlers()
	}
	mgr, err := ctrl.NewManager(kc.Config, ctrl.Options{
		Scheme: scheme,
		Logger: log,
		// Only Workplaces are cached, and only those this controller owns: Secrets,
		// ConfigMaps and everything else are read directly, never cached cluster-wide.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.Workplace{}: {Label: opts.Selector},
		}},
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{
			&corev1.Secret{}, &corev1.ConfigMap{},
		}}},
		Metrics:                       ms,
		HealthProbeBindAddress:        opts.ProbeAddr,
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              opts.Name + "-controller",
		LeaderElectionNamespace:       opts.Namespace,
		LeaderElectionReleaseOnCancel: true,
		// Reconciles in progress get the grace period to let their Helm actions
		// finish, plus time to write their status.
		GracefulShutdownTimeout: ptrDuration(opts.ShutdownGrace + 15*time.Second),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}

	state := &sourceState{}
	trigger := webhook.NewSignal()
	wake := make(chan event.GenericEvent)
	// wr is set below, before the manager starts anything that reconciles.
	var wr *WorkplaceReconciler
	progress := func(ev release.Event) {
		if ev.Path != nil && wr != nil {
			wr.pathProgress(ctx, ev)
		}
	}
	// Workplaces may not use the system namespaces nor the controller's own.
	deny := guard.DefaultDenyNamespaces()
	if opts.Namespace != "" {
		deny = append(deny, opts.Namespace)
	}
	newTarget := func(name, version string, c *kube.Cluster) (*target, error) {
		var namespaces []string
		if name == "" {
			namespaces = opts.WatchNamespaces
		}
		mc, err := newMetadataCache(c, scheme, namespaces)
		if err != nil {
			return nil, err
		}
		t := &target{name: name, version: version, kube: c, meta: mc, slots: make(chan struct{}, opts.ClusterConcurrency), cancel: func() {}}
		// Readiness is read from the target's watches (release.StatusReader).
		rec := reconciler.New(c, release.Options{Parallelism: opts.ReleaseParallelism, Progress: progress, StatusReader: watchedStatus{t}}, release.Holder("platzwart-controller"))
		rec.Grace = opts.ShutdownGrace
		rec.Render = render.Options{Guard: guard.Options{DenyNamespaces: deny, Scope: guard.RESTMapperScope(c.Mapper)}}
		rec.Started = func(ctx context.Context, p *plan.Plan, steps []release.Step) { wr.setReconciling(ctx, p, steps) }
		t.rec = rec
		return t, nil
	}
	local, err := newTarget("", "", kc)
	if err != nil {
		return err
	}
	// The controller's own cluster's informers start with the manager.
	if err := mgr.Add(local.meta); err != nil {
		return err
	}
	connect := opts.ConnectRemote
	if connect == nil {
		connect = func(data []byte) (*kube.Cluster, error) {
			return kube.FromKubeconfig(data, kube.Options{QPS: opts.Cluster.QPS, Burst: opts.Cluster.Burst})
		}
	}
	ts := &targets{local: local, reader: mgr.GetAPIReader(), newTarget: newTarget, connect: connect,
		log: log.WithName("targets"), ready: make(chan struct{})}
	// A cluster that stops answering wakes its Workplaces, so that each reports it
	// (ClusterUnreachable) instead of its last verified state.
	ts.wentDown = func(t *target) {
		for _, w := range wr.tracker.onTarget(t) {
			select {
			case wake <- event.GenericEvent{Object: &v1alpha1.Workplace{ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: w.Name}}}:
			case <-ts.ctx.Done():
				return
			}
		}
	}
	if err := mgr.Add(ts); err != nil {
		return err
	}
	cyc := &cycle{every: opts.Requeue, client: mgr.GetClient(), wake: wake, m: cycleMetrics, log: log.WithName("cycle")}
	if err := mgr.Add(cyc); err != nil {
		return err
	}
	wr = &WorkplaceReconciler{
		Client:        mgr.GetClient(),
		APIReader:     mgr.GetAPIReader(),
		targets:       ts,
		tracker:       newTracker(),
		cycle:         cyc,
		FullResync:    opts.FullResync,
		Recorder:      mgr.GetEventRecorder("platzwart"),
		Metrics:       m,
		Source:        state,
		Wake:          wake,
		wakeup:        wake,
		Name:          opts.Name,
		RetryInterval: opts.RetryInterval,
		Log:           log.WithName("workplace"),
	}
	if opts.FunctionalChecks {
		wr.Functional = &check.Options{Timeout: opts.CheckTimeout}
	}
	// Twice the per-cluster bound: the Workplaces of one slow or unreachable
	// cluster never hold every worker (answers from the watch caches take no slot).
	if err := wr.SetupWithManager(mgr, 2*opts.Concurrency); err != nil {
		return err
	}
	if opts.Source.URL != "" {
		loop := &sourceLoop{
			opts:    opts,
			client:  mgr.GetClient(),
			reader:  mgr.GetAPIReader(),
			kube:    kc,
			state:   state,
			trigger: trigger.C(),
			metrics: sourceMetrics,
			log:     log.WithName("source"),
		}
		loop.wake = func(ctx context.Context) { wakeAll(ctx, mgr.GetClient(), opts.Name, wake, loop.log) }
		if err := mgr.Add(loop); err != nil {
			return err
		}
	}
	if len(opts.WebhookSecret) > 0 {
		recv, err := webhook.New(webhook.Config{
			Secret:  opts.WebhookSecret,
			Logger:  slog.New(logr.ToSlogHandler(log.WithName("webhook"))),
			Trigger: trigger.Fire,
			Refs:    webhookRefs(opts.Source.Ref),
			Metrics: webhookMetrics,
		})
		if err != nil {
			return err
		}
		if err := mgr.Add(&webhookServer{addr: opts.WebhookAddr, handler: recv, certFile: opts.WebhookTLSCert, keyFile: opts.WebhookTLSKey}); err != nil {
			return err
		}
	}
	log.Info("starting controller", "name", opts.Name, "source", opts.Source.URL, "ref", opts.Source.Ref.String(),
		"path", opts.Path, "selector", opts.Selector.String())
	return mgr.Start(ctx)
}

// webhookRefs limits webhook triggers to the configured branch or tag.
func webhookRefs(r source.Ref) []string {
	switch {
	case r.Tag != "":
		return []string{"refs/tags/" + r.Tag}
	case r.Branch != "":
		return []string{"refs/heads/" + r.Branch}
	}
	return nil
}

func ptrDuration(d time.Duration) *time.Duration { return &d }

// pprofHandlers are net/http/pprof's handlers for the metrics server.
func pprofHandlers() map[string]http.Handler {
	return map[string]http.Handler{
		"/debug/pprof/":        http.HandlerFunc(pprof.Index),
		"/debug/pprof/cmdline": http.HandlerFunc(pprof.Cmdline),
		"/debug/pprof/profile": http.HandlerFunc(pprof.Profile),
		"/debug/pprof/symbol":  http.HandlerFunc(pprof.Symbol),
		"/debug/pprof/trace":   http.HandlerFunc(pprof.Trace),
	}
}

// wakeAll asks the Workplace reconciler to reconcile every Workplace of the source.
func wakeAll(ctx context.Context, c client.Client, name string, wake chan<- event.GenericEvent, log logr.Logger) {
	var list v1alpha1.WorkplaceList
	if err := c.List(ctx, &list, client.MatchingLabels{LabelSource: name}); err != nil {
		log.Error(err, "listing Workplaces to reconcile")
		return
	}
	for i := range list.Items {
		select {
		case wake <- event.GenericEvent{Object: &list.Items[i]}:
		case <-ctx.Done():
			return
		}
	}
}

// webhookServer serves the push receiver at /hook on every replica.
type webhookServer struct {
	addr              string
	handler           http.Handler
	certFile, keyFile string
	// readTimeout bounds reading a request, headers and body (default 30s).
	readTimeout time.Duration
}

// NeedLeaderElection is false: every replica answers webhooks. Only the leader's own
// trigger starts a fetch at once; a push received by another replica is picked up by
// the leader's next poll.
func (w *webhookServer) NeedLeaderElection() bool { return false }

// Start serves until ctx is done. Timeouts bound what a slow or idle client can hold:
// push payloads are small (the receiver reads at most 1 MiB).
func (w *webhookServer) Start(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.Handle("/hook", w.handler)
	read := w.readTimeout
	if read <= 0 {
		read = 30 * time.Second
	}
	srv := &http.Server{
		Addr:              w.addr,
		Handler:           mux,
		ReadHeaderTimeout: min(read, 10*time.Second),
		ReadTimeout:       read,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() {
		if w.certFile != "" {
			errc <- srv.ListenAndServeTLS(w.certFile, w.keyFile)
			return
		}
		errc <- srv.ListenAndServe()
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("webhook server on %s: %w", w.addr, err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

var _ manager.LeaderElectionRunnable = &webhookServer{}
