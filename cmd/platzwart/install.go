package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"helm.sh/helm/v3/pkg/strvals"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/controller"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/render"
)

const (
	// controllerChartDir is the controller's chart in the built-in catalog.
	controllerChartDir = "charts/platzwart"
	// defaultInstallNamespace is where `platzwart install` puts the controller without -n.
	defaultInstallNamespace = "platzwart-system"
	// installFieldOwner is the field manager of what `platzwart install` writes itself
	// (namespace, webhook Secret).
	installFieldOwner = "platzwart-install"
	// webhookSecretKey is the key of the webhook Secret holding the token or HMAC key.
	webhookSecretKey = "secret"
	// annotationWebhookSecret is a pod annotation holding the webhook Secret's
	// resourceVersion: a new secret rolls the controller, which reads it at start.
	annotationWebhookSecret = "platzwart.io/webhook-secret-version"
)

// installFlags are the flags of `platzwart install`.
type installFlags struct {
	name, repo, branch, path     string
	gitSecret, webhookSecretFile string
	set, setString               []string
	dryRun                       bool
	timeout                      time.Duration
}

func newInstallCommand(g *globalFlags) *cobra.Command {
	f := &installFlags{}
	cmd := &cobra.Command{
		Use:   "install --repo URL",
		Short: "Install or upgrade the platzwart controller in the cluster (the built-in charts/platzwart chart)",
		Long: `install puts the GitOps controller into the cluster: it applies the Workplace CRD,
creates the namespace (-n, default platzwart-system) and the workplace namespaces
of rbac.namespaces if missing (the controller is namespace-scoped by default: it
writes only there; rbac.clusterWide=true opts into every namespace), stores the webhook
secret from --webhook-secret-file in a Secret, installs or upgrades the Helm release
--name of the chart embedded in this binary (charts/platzwart) with the Helm SDK, and
waits until the controller's Deployment is ready (kstatus).

Every run sets the whole configuration: flags not given take their defaults again
(like helm upgrade without --reuse-values). --set and --set-string override the
other flags; the chart's values are in charts/platzwart/README.md.

With --dry-run it prints the manifests (CRD included) and touches no cluster.`,
		Example: `  platzwart install --repo https://git.example.org/workplaces.git
  platzwart install --repo ssh://git@git.example.org/ops/workplaces.git --git-secret platzwart-system/git \
    --webhook-secret-file ./webhook-token --set rbac.namespaces={demo,staging}
  platzwart install --repo https://git.example.org/workplaces.git --dry-run > platzwart.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInstall(cmd.Context(), g, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.repo, "repo", "", "Git repository URL of the Workplaces (https:// or ssh://)")
	fl.StringVar(&f.branch, "branch", "main", "branch to follow")
	fl.StringVar(&f.path, "path", ".", "folder of the repository holding the Workplaces")
	fl.StringVar(&f.name, "name", "platzwart", "Helm release name (also names the Deployment, ServiceAccount and leader election lease)")
	fl.StringVar(&f.gitSecret, "git-secret", "", "Secret with Git credentials: namespace/name, or name in -n (username/password, bearerToken, or identity/known_hosts)")
	fl.StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "file with the push webhook token or HMAC key; stored in Secret <name>-webhook, turns the receiver on")
	fl.StringArrayVar(&f.set, "set", nil, "set a chart value, key=value (like helm --set; may repeat)")
	fl.StringArrayVar(&f.setString, "set-string", nil, "set a chart value as a string, key=value (may repeat)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the manifests that would be installed; do not contact the cluster")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long to wait for the controller to become ready")
	_ = cmd.MarkFlagRequired("repo")
	return cmd
}

// runInstall is `platzwart install`.
func runInstall(ctx context.Context, g *globalFlags, f *installFlags, out, errOut io.Writer) error {
	ns := g.namespace
	if ns == "" {
		ns = defaultInstallNamespace
	}
	var webhookSecret []byte
	if f.webhookSecretFile != "" {
		data, err := os.ReadFile(f.webhookSecretFile)
		if err != nil {
			return fmt.Errorf("--webhook-secret-file: %w", err)
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return fmt.Errorf("--webhook-secret-file %s: the file is empty", f.webhookSecretFile)
		}
		webhookSecret = data
	}
	ch, err := controllerChart()
	if err != nil {
		return err
	}
	vals, err := f.values()
	if err != nil {
		return err
	}

	// Render client-side first, also without --dry-run: values that the schema or the
	// chart's checks reject never reach the cluster.
	m, err := render.Release(ctx, &plan.Release{Name: f.name, Namespace: ns, Component: "platzwart", Chart: ch, Values: vals})
	if err != nil {
		return err
	}
	if f.dryRun {
		if _, err := out.Write(m.Bytes()); err != nil {
			return err
		}
		fmt.Fprintf(errOut, "dry run: nothing was sent to the cluster. install would create namespace %s if missing", ns)
		if webhookSecret != nil {
			fmt.Fprintf(errOut, ", Secret %s/%s from %s (not shown)", ns, webhookSecretName(f.name), f.webhookSecretFile)
		}
		fmt.Fprintf(errOut, ", apply the Workplace CRD and install or upgrade release %s/%s with the manifests above\n", ns, f.name)
		return nil
	}

	c, err := connect(g)
	if err != nil {
		return err
	}
	created, err := kube.EnsureNamespace(ctx, c.Clientset, ns, installFieldOwner)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(errOut, "created namespace %s\n", ns)
	}
	// Namespace-scoped install: the controller may not create namespaces, so the
	// allowed workplace namespaces are created here (their RoleBindings need them).
	for _, wns := range workplaceNamespaces(vals) {
		created, err := kube.EnsureNamespace(ctx, c.Clientset, wns, installFieldOwner)
		if err != nil {
			return fmt.Errorf("workplace namespace (rbac.namespaces): %w", err)
		}
		if created {
			fmt.Fprintf(errOut, "created workplace namespace %s\n", wns)
		}
	}
	if webhookSecret != nil {
		rv, err := applyWebhookSecret(ctx, c, ns, f.name, webhookSecret)
		if err != nil {
			return err
		}
		ann, _ := vals["podAnnotations"].(map[string]any)
		if ann == nil {
			ann = map[string]any{}
			vals["podAnnotations"] = ann
		}
		ann[annotationWebhookSecret] = rv
		fmt.Fprintf(errOut, "applied Secret %s/%s (webhook token from %s)\n", ns, webhookSecretName(f.name), f.webhookSecretFile)
	}
	// The chart's crds/ are installed by Helm on the first install only; applying the
	// CRD on every run keeps it current on upgrades too.
	if err := controller.InstallCRD(ctx, c); err != nil {
		return err
	}
	fmt.Fprintln(errOut, "applied the Workplace CRD (workplaces.platzwart.io)")

	cfg := &action.Configuration{}
	if err := cfg.Init(c.Getter(ns), ns, "secret", func(string, ...any) {}); err != nil {
		return fmt.Errorf("helm in namespace %q: %w", ns, err)
	}
	start := time.Now()
	rel, verb, err := installOrUpgrade(ctx, cfg, f, ns, ch, vals, errOut)
	if err != nil {
		return err
	}
	effective, err := chartutil.CoalesceValues(ch.Chart, vals)
	if err != nil {
		return fmt.Errorf("chart values: %w", err)
	}
	if image, _ := effective.PathValue("image.repository"); image == "platzwart/platzwart" {
		fmt.Fprintln(errOut, "note: nothing publishes the platzwart image yet: build it with `make image`, load it (minikube image load) or push it (make image PUSH=REF), and set image.tag to its version (docs/minikube.md; charts/platzwart/README.md, \"Image\")")
	}
	fmt.Fprintf(errOut, "waiting up to %s for the controller to be ready\n", f.timeout)
	if err := waitRelease(ctx, c, cfg, rel, f.timeout); err != nil {
		return fmt.Errorf("release %s/%s revision %d was %s but is not ready: %w; see `kubectl -n %s describe deployment %s`",
			ns, rel.Name, rel.Version, verb, err, ns, rel.Name)
	}
	printInstalled(ctx, out, c, rel, verb, effective, f.repo, time.Since(start))
	return nil
}

// controllerChart loads charts/platzwart from the catalog embedded in the binary.
func controllerChart() (*catalog.Chart, error) {
	cat, err := catalog.Load(catalog.Layer{FS: platzwart.Builtin(), Label: "builtin"})
	if err != nil {
		return nil, fmt.Errorf("built-in catalog: %w", err)
	}
	return cat.Chart(controllerChartDir)
}

// values maps the flags onto chart values; --set and --set-string come last and win.
func (f *installFlags) values() (map[string]any, error) {
	git := map[string]any{"url": f.repo, "branch": f.branch, "path": f.path}
	if f.gitSecret != "" {
		git["secret"] = f.gitSecret
	}
	vals := map[string]any{"git": git}
	if f.webhookSecretFile != "" {
		vals["webhook"] = map[string]any{"secret": map[string]any{"name": webhookSecretName(f.name), "key": webhookSecretKey}}
	}
	for _, s := range f.set {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, fmt.Errorf("--set %q: %w", s, err)
		}
	}
	for _, s := range f.setString {
		if err := strvals.ParseIntoString(s, vals); err != nil {
			return nil, fmt.Errorf("--set-string %q: %w", s, err)
		}
	}
	return vals, nil
}

// webhookSecretName is the Secret `platzwart install` stores the webhook token in.
func webhookSecretName(release string) string { return release + "-webhook" }

// applyWebhookSecret server-side applies the webhook Secret and returns its
// resourceVersion (unchanged when the token is). It is kept out of Helm, so the token
// never lands in Helm's release storage.
func applyWebhookSecret(ctx context.Context, c *kube.Cluster, ns, release string, token []byte) (string, error) {
	name := webhookSecretName(release)
	sec := corev1ac.Secret(name, ns).
		WithLabels(map[string]string{"app.kubernetes.io/managed-by": "platzwart", "app.kubernetes.io/instance": release}).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{webhookSecretKey: token})
	got, err := c.Clientset.CoreV1().Secrets(ns).Apply(ctx, sec, metav1.ApplyOptions{FieldManager: installFieldOwner, Force: true})
	if err != nil {
		return "", fmt.Errorf("webhook Secret %s/%s: %w", ns, name, err)
	}
	return got.ResourceVersion, nil
}

// installOrUpgrade installs the release when it does not exist (or was uninstalled
// with its history kept), and upgrades it otherwise. It returns the new revision and
// "installed" or "upgraded".
func installOrUpgrade(ctx context.Context, cfg *action.Configuration, f *installFlags, ns string, ch *catalog.Chart, vals map[string]any, errOut io.Writer) (*helmrelease.Release, string, error) {
	last, err := cfg.Releases.Last(f.name)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, "", fmt.Errorf("release %s/%s: %w", ns, f.name, err)
	}
	if last != nil && last.Info != nil && last.Info.Status.IsPending() {
		return nil, "", fmt.Errorf("release %s/%s revision %d is %s: an earlier install or upgrade was interrupted or is still running; "+
			"when nothing else is installing it, run `helm -n %s rollback %s` (or `helm -n %s uninstall %s` if it never deployed) and try again",
			ns, f.name, last.Version, last.Info.Status, ns, f.name, ns, f.name)
	}
	if last == nil || (last.Info != nil && last.Info.Status == helmrelease.StatusUninstalled) {
		fmt.Fprintf(errOut, "installing release %s/%s (chart %s-%s)\n", ns, f.name, ch.Chart.Name(), ch.Chart.Metadata.Version)
		in := action.NewInstall(cfg)
		in.ReleaseName = f.name
		in.Namespace = ns
		in.Timeout = f.timeout
		in.Replace = last != nil
		in.SkipCRDs = true // applied by InstallCRD before
		rel, err := in.RunWithContext(ctx, ch.Chart, vals)
		if err != nil {
			return nil, "", fmt.Errorf("installing release %s/%s: %w", ns, f.name, err)
		}
		return rel, "installed", nil
	}
	fmt.Fprintf(errOut, "upgrading release %s/%s from revision %d (chart %s-%s)\n", ns, f.name, last.Version, ch.Chart.Name(), ch.Chart.Metadata.Version)
	up := action.NewUpgrade(cfg)
	up.Namespace = ns
	up.Timeout = f.timeout
	up.MaxHistory = 10
	rel, err := up.RunWithContext(ctx, f.name, ch.Chart, vals)
	if err != nil {
		return nil, "", fmt.Errorf("upgrading release %s/%s: %w", ns, f.name, err)
	}
	return rel, "upgraded", nil
}

// waitRelease waits until every resource of the release is Current by kstatus (the
// Deployment Available with its new ReplicaSet), with the wait the reconciler gives
// component releases. On failure it says which resources are not ready and why.
func waitRelease(ctx context.Context, c *kube.Cluster, _ *action.Configuration, rel *helmrelease.Release, timeout time.Duration) error {
	eng := release.New(c, release.Options{PollInterval: 500 * time.Millisecond})
	if err := eng.WaitManifest(ctx, rel.Manifest, rel.Namespace, timeout); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("after %s: %w", timeout, err)
	}
	return nil
}

// printInstalled says what was done and what to do next.
func printInstalled(ctx context.Context, w io.Writer, c *kube.Cluster, rel *helmrelease.Release, verb string, vals chartutil.Values, repo string, took time.Duration) {
	ns := rel.Namespace
	image, ready := "", int32(0)
	if d, err := c.Clientset.AppsV1().Deployments(ns).Get(ctx, rel.Name, metav1.GetOptions{}); err == nil {
		ready = d.Status.ReadyReplicas
		if len(d.Spec.Template.Spec.Containers) > 0 {
			image = d.Spec.Template.Spec.Containers[0].Image
		}
	}
	str := func(path string) string {
		v, err := vals.PathValue(path)
		if err != nil || v == nil {
			return ""
		}
		return fmt.Sprint(v)
	}
	ref := "branch " + str("git.branch")
	switch {
	case str("git.tag") != "":
		ref = "tag " + str("git.tag")
	case str("git.commit") != "":
		ref = "commit " + str("git.commit")
	}
	fmt.Fprintf(w, "release %s/%s %s: revision %d, chart %s-%s, image %s\n", ns, rel.Name, verb, rel.Version,
		rel.Chart.Metadata.Name, rel.Chart.Metadata.Version, image)
	fmt.Fprintf(w, "controller ready: Deployment %s/%s, %d ready replica(s), in %s\n", ns, rel.Name, ready, took.Round(100*time.Millisecond))
	fmt.Fprintf(w, "\nNext:\n")
	fmt.Fprintf(w, "  Workplaces of %s (%s, path %s) appear in their own namespaces:\n", repo, ref, str("git.path"))
	fmt.Fprintf(w, "    kubectl get workplaces -A -w\n")
	switch nss := workplaceNamespaces(vals); {
	case str("rbac.clusterWide") == "true":
		fmt.Fprintf(w, "  Workplace namespaces: any (rbac.clusterWide: the controller writes in every namespace).\n")
	case len(nss) > 0:
		fmt.Fprintf(w, "  Workplace namespaces: %s (namespace-scoped; a Workplace elsewhere fails with forbidden).\n", strings.Join(nss, ", "))
	default:
		fmt.Fprintf(w, "  Workplace namespaces: none yet (namespace-scoped, nothing allowed). Run install again with\n")
		fmt.Fprintf(w, "    --set rbac.namespaces={ns1,ns2}, or --set rbac.clusterWide=true to allow every namespace.\n")
	}
	fmt.Fprintf(w, "  Controller logs:\n    kubectl -n %s logs deploy/%s -f\n", ns, rel.Name)
	if str("webhook.secret.name") != "" {
		fmt.Fprintf(w, "  Push webhook: point your Git server at https://<your host>/hook and route that path to\n")
		fmt.Fprintf(w, "    Service %s/%s port %s (\"webhook\"); the token or HMAC key is Secret %s/%s key %q.\n",
			ns, rel.Name, str("webhook.port"), ns, str("webhook.secret.name"), str("webhook.secret.key"))
	} else {
		fmt.Fprintf(w, "  Push webhook: off, Git is polled every %s. Run install again with --webhook-secret-file\n", str("git.interval"))
		fmt.Fprintf(w, "    to receive pushes at /hook on Service %s/%s port %s.\n", ns, rel.Name, str("webhook.port"))
	}
	fmt.Fprintf(w, "  Metrics: Service %s/%s port %s, path /metrics.\n", ns, rel.Name, str("metrics.port"))
}

// workplaceNamespaces returns the chart value rbac.namespaces: the namespaces a
// namespace-scoped controller may write to.
func workplaceNamespaces(vals map[string]any) []string {
	var rbac map[string]any
	switch m := vals["rbac"].(type) {
	case map[string]any:
		rbac = m
	case chartutil.Values:
		rbac = m
	}
	list, _ := rbac["namespaces"].([]any)
	var out []string
	for _, v := range list {
		if s, ok := v.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}
