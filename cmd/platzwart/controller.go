package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/platzwart/platzwart/reconciler/controller"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/source"
)

// controllerFlags are the flags of `platzwart controller`.
type controllerFlags struct {
	name, repo, branch, tag, commit, path string
	gitSecret, verifyMode, verifyKeys     string
	cacheDir                              string
	interval, requeue                     time.Duration
	selector                              string
	concurrency, parallelism              int
	webhookAddr, webhookSecretFile        string
	metricsAddr, probeAddr                string
	leaderElect, installCRDs              bool
	logFormat                             string
	shutdownGrace, retryInterval          time.Duration
	webhookTLSCert, webhookTLSKey         string
	functionalChecks                      bool
	checkTimeout                          time.Duration
	fullResync                            time.Duration
	clusterConcurrency                    int
	pprof                                 bool
	qps                                   float32
	burst                                 int
	watchNamespaces                       []string
}

func newControllerCommand(g *globalFlags) *cobra.Command {
	f := &controllerFlags{}
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the GitOps controller: watch a Git repository, keep every Workplace in it reconciled",
		Long: `controller fetches --repo at --branch (or --tag, --commit) on an interval and on push
webhooks, applies the Workplace documents under --path as Workplace resources, and
reconciles every Workplace matching --workplace-selector into its namespace. It runs
in the cluster (charts/platzwart, platzwart install) or outside against --kubeconfig.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := controllerOptions(cmd.Context(), g, f)
			if err != nil {
				return err
			}
			if f.installCRDs {
				c, err := kube.Connect(opts.Cluster)
				if err != nil {
					return err
				}
				if err := controller.InstallCRD(cmd.Context(), c); err != nil {
					return err
				}
			}
			return controller.Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "platzwart", "name of this controller install (Workplace source label, leader election lease)")
	fl.StringVar(&f.repo, "repo", "", "Git repository URL (https:// or ssh://); empty reconciles only Workplaces created in the cluster")
	fl.StringVar(&f.branch, "branch", "main", "branch to follow")
	fl.StringVar(&f.tag, "tag", "", "tag to follow instead of a branch")
	fl.StringVar(&f.commit, "commit", "", "commit to pin instead of a branch")
	fl.StringVar(&f.path, "path", ".", "folder of the repository holding the Workplaces")
	fl.StringVar(&f.gitSecret, "git-secret", "", "Secret (namespace/name) with Git credentials: username/password, bearerToken, or identity/known_hosts")
	fl.StringVar(&f.verifyMode, "verify", "", "verify commit signatures: openpgp or ssh; unverified commits are never applied")
	fl.StringVar(&f.verifyKeys, "verify-keys", "", "file with the trusted public keys (armored OpenPGP key ring, or authorized_keys lines)")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "Git cache directory (default: the user cache directory)")
	fl.DurationVar(&f.interval, "interval", time.Minute, "how often Git is polled")
	fl.DurationVar(&f.requeue, "requeue", 10*time.Minute, "how often every Workplace is checked (a Workplace nothing touched since it was verified is answered from the watch caches; hand edits are corrected at their watch event)")
	fl.DurationVar(&f.fullResync, "full-resync", time.Hour, "how long a Workplace is answered from the watch caches before a check compares it with the cluster in full (spread over half as much again)")
	fl.IntVar(&f.clusterConcurrency, "cluster-concurrency", 0, "full reconciles at once against one cluster (default --concurrency; the controller runs twice --concurrency workers)")
	fl.BoolVar(&f.pprof, "pprof", false, "serve net/http/pprof at /debug/pprof/ on the metrics address")
	fl.StringSliceVar(&f.watchNamespaces, "watch-namespaces", nil, "watch the Workplaces' objects only in these namespaces (where the controller's RBAC is bound); empty = all")
	fl.Float32Var(&f.qps, "kube-api-qps", 50, "requests per second to each cluster's API server (client-side rate limit)")
	fl.IntVar(&f.burst, "kube-api-burst", 100, "burst of requests above --kube-api-qps")
	fl.StringVar(&f.selector, "workplace-selector", "", "label selector of the Workplaces this controller reconciles (scale-out)")
	fl.IntVar(&f.concurrency, "concurrency", 4, "Workplaces reconciled at once")
	fl.IntVar(&f.parallelism, "parallelism", 4, "releases acted on at once within a Workplace")
	fl.StringVar(&f.webhookAddr, "webhook-addr", ":9292", "address of the push webhook receiver (path /hook)")
	fl.StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "file holding the webhook token or HMAC key; the receiver is off without it")
	fl.StringVar(&f.metricsAddr, "metrics-addr", ":8080", `address of /metrics ("0" disables)`)
	fl.StringVar(&f.probeAddr, "probe-addr", ":8081", `address of /healthz and /readyz ("0" disables)`)
	fl.BoolVar(&f.leaderElect, "leader-elect", false, "elect a leader among replicas (needs -n for the lease namespace)")
	fl.BoolVar(&f.installCRDs, "install-crds", false, "apply the Workplace CRD at start (outside the cluster; the chart installs it otherwise)")
	fl.StringVar(&f.logFormat, "log-format", "json", "log format: json or text")
	fl.DurationVar(&f.shutdownGrace, "shutdown-grace", 5*time.Minute, "after SIGTERM, how long Helm actions in progress may finish (keep it below the pod's terminationGracePeriodSeconds)")
	fl.DurationVar(&f.retryInterval, "retry-interval", 30*time.Second, "first retry delay of a failing Workplace, doubled per failure in a row (up to 15m, spec.retries times)")
	fl.BoolVar(&f.functionalChecks, "functional-checks", true, "after successful reconciles, run the checks of `platzwart check` and report them as the Functional condition (never changes Ready)")
	fl.DurationVar(&f.checkTimeout, "check-timeout", 5*time.Second, "timeout of each functional check probe")
	fl.StringVar(&f.webhookTLSCert, "webhook-tls-cert", "", "PEM certificate file: serve the webhook receiver over HTTPS (with --webhook-tls-key)")
	fl.StringVar(&f.webhookTLSKey, "webhook-tls-key", "", "PEM private key file of --webhook-tls-cert")
	return cmd
}

// controllerOptions maps the flags onto controller.Options, reading files and Secrets.
func controllerOptions(ctx context.Context, g *globalFlags, f *controllerFlags) (controller.Options, error) {
	var handler slog.Handler = slog.NewJSONHandler(os.Stderr, nil)
	if f.logFormat == "text" {
		handler = slog.NewTextHandler(os.Stderr, nil)
	}
	opts := controller.Options{
		Cluster:            kube.Options{Kubeconfig: g.kubeconfig, Context: g.context, QPS: f.qps, Burst: f.burst},
		Name:               f.name,
		Namespace:          g.namespace,
		Path:               f.path,
		Interval:           f.interval,
		Requeue:            f.requeue,
		FullResync:         f.fullResync,
		ClusterConcurrency: f.clusterConcurrency,
		Pprof:              f.pprof,
		WatchNamespaces:    f.watchNamespaces,
		Concurrency:        f.concurrency,
		ReleaseParallelism: f.parallelism,
		WebhookAddr:        f.webhookAddr,
		MetricsAddr:        f.metricsAddr,
		ProbeAddr:          f.probeAddr,
		LeaderElection:     f.leaderElect,
		ShutdownGrace:      f.shutdownGrace,
		FunctionalChecks:   f.functionalChecks,
		CheckTimeout:       f.checkTimeout,
		RetryInterval:      f.retryInterval,
		WebhookTLSCert:     f.webhookTLSCert,
		WebhookTLSKey:      f.webhookTLSKey,
		Logger:             logr.FromSlogHandler(handler),
	}
	if (f.webhookTLSCert == "") != (f.webhookTLSKey == "") {
		return opts, fmt.Errorf("--webhook-tls-cert and --webhook-tls-key go together")
	}
	sel, err := labels.Parse(f.selector)
	if err != nil {
		return opts, fmt.Errorf("--workplace-selector: %w", err)
	}
	opts.Selector = sel
	if f.leaderElect && g.namespace == "" {
		return opts, fmt.Errorf("--leader-elect needs -n, the namespace of the leader election lease")
	}
	if f.webhookSecretFile != "" {
		secret, err := os.ReadFile(f.webhookSecretFile)
		if err != nil {
			return opts, fmt.Errorf("--webhook-secret-file: %w", err)
		}
		opts.WebhookSecret = []byte(strings.TrimSpace(string(secret)))
	}
	if f.repo == "" {
		return opts, nil
	}
	ref := source.Ref{Branch: f.branch, Tag: f.tag, Commit: f.commit}
	if f.tag != "" || f.commit != "" {
		ref.Branch = ""
	}
	cache := f.cacheDir
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return opts, fmt.Errorf("--cache-dir: %w", err)
		}
		cache = filepath.Join(dir, "platzwart", "git")
	}
	opts.Source = source.Options{URL: f.repo, Ref: ref, CacheDir: cache, Timeout: 5 * time.Minute}
	if f.gitSecret != "" {
		ns, name, ok := strings.Cut(f.gitSecret, "/")
		if !ok {
			return opts, fmt.Errorf("--git-secret %q: want namespace/name", f.gitSecret)
		}
		c, err := kube.Connect(opts.Cluster)
		if err != nil {
			return opts, err
		}
		sec, err := c.Clientset.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return opts, fmt.Errorf("--git-secret %s: %w", f.gitSecret, err)
		}
		if opts.Source.Auth, err = source.AuthFromSecret(sec.Data); err != nil {
			return opts, fmt.Errorf("--git-secret %s: %w", f.gitSecret, err)
		}
	}
	if f.verifyMode != "" {
		keys, err := os.ReadFile(f.verifyKeys)
		if err != nil {
			return opts, fmt.Errorf("--verify-keys: %w", err)
		}
		opts.Source.Verify = &source.Verification{Mode: source.VerifyMode(f.verifyMode), Keys: [][]byte{keys}}
	}
	return opts, nil
}
