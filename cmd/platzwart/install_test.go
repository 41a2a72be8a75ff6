package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/go-logr/logr"
	"helm.sh/helm/v3/pkg/action"
	helmrelease "helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/controller"
	"github.com/platzwart/platzwart/reconciler/kube"
)

// TestMain runs the package's tests against one local control plane (started on the
// first cluster.FromTest; tests that need no cluster never start it).
func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	os.Exit(cluster.RunTests(m))
}

const testRepo = "https://git.example.org/workplaces.git"

// runCLI runs the platzwart command line in process and returns what it printed.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// mustInstall runs `platzwart install` with args and fails the test on an error.
func mustInstall(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runCLI(t, append([]string{"install"}, args...)...)
	if err != nil {
		t.Fatalf("platzwart install %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	t.Logf("platzwart install:\n%s%s", errOut, out)
	return out
}

// helmConfig is Helm's configuration for a namespace of the test cluster.
func helmConfig(t *testing.T, c *cluster.Cluster, ns string) *action.Configuration {
	t.Helper()
	cfg := &action.Configuration{}
	if err := cfg.Init(c.RESTClientGetter(ns), ns, "secret", t.Logf); err != nil {
		t.Fatalf("helm in namespace %s: %v", ns, err)
	}
	return cfg
}

// uninstallAtCleanup uninstalls the release when the test ends, before its namespace is
// deleted: its ClusterRoles and ClusterRoleBindings outlive the namespace otherwise.
func uninstallAtCleanup(t *testing.T, c *cluster.Cluster, ns, name string) {
	t.Helper()
	cfg := helmConfig(t, c, ns)
	t.Cleanup(func() {
		un := action.NewUninstall(cfg)
		un.IgnoreNotFound = true
		un.Timeout = time.Minute
		if _, err := un.Run(name); err != nil {
			t.Errorf("uninstall release %s/%s: %v", ns, name, err)
		}
	})
}

// clientset is a typed client of the test cluster.
func clientset(t *testing.T, c *cluster.Cluster) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// access is one request the controller's ServiceAccount may or may not make.
type access struct {
	verb, group, resource, subresource, namespace, name string
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	if a.name != "" {
		r += " " + a.name
	}
	where := "cluster-wide"
	if a.namespace != "" {
		where = "in namespace " + a.namespace
	}
	return fmt.Sprintf("%s %s %s", a.verb, r, where)
}

// canI asks the API server's authorizer whether the ServiceAccount ns/sa may do a
// (kubectl auth can-i --as system:serviceaccount:ns:sa).
func canI(ctx context.Context, cs kubernetes.Interface, ns, sa string, a access) (bool, error) {
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + ns + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Namespace: a.namespace, Name: a.name,
		},
	}}
	got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("%s: %w", a, err)
	}
	return got.Status.Allowed, nil
}

// checkAccess asserts that the ServiceAccount may do every allowed request (waiting
// for the API server's RBAC cache to see new bindings) and then none of the denied.
func checkAccess(t *testing.T, cs kubernetes.Interface, ns, sa string, allowed, denied []access) {
	t.Helper()
	for _, a := range allowed {
		err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			return canI(ctx, cs, ns, sa, a)
		})
		if err != nil {
			t.Errorf("ServiceAccount %s/%s may not %s, but the controller must: %v", ns, sa, a, err)
		}
	}
	for _, a := range denied {
		ok, err := canI(t.Context(), cs, ns, sa, a)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Errorf("ServiceAccount %s/%s may %s; it must not", ns, sa, a)
		}
	}
}

// lastRelease returns the newest revision of a release and the number of revisions.
func lastRelease(t *testing.T, c *cluster.Cluster, ns, name string) (*helmrelease.Release, int) {
	t.Helper()
	cfg := helmConfig(t, c, ns)
	hist, err := cfg.Releases.History(name)
	if err != nil {
		t.Fatalf("history of release %s/%s: %v", ns, name, err)
	}
	last, err := cfg.Releases.Last(name)
	if err != nil {
		t.Fatalf("release %s/%s: %v", ns, name, err)
	}
	return last, len(hist)
}

// controllerDeployment reads the controller's Deployment and checks it is Available.
func controllerDeployment(t *testing.T, cs kubernetes.Interface, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Deployment %s/%s: %v", ns, name, err)
	}
	available := false
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
			available = true
		}
	}
	if !available || d.Status.ReadyReplicas != 1 {
		t.Errorf("Deployment %s/%s: not Available with 1 ready replica after install: %+v", ns, name, d.Status)
	}
	return d
}

// TestInstall installs the controller as the brief's quick path does, checks the
// release, the CRD, the Deployment and the ServiceAccount's rights, and installs again:
// an upgrade that changes nothing.
func TestInstall(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientset(t, c)
	ns := c.NewNamespace(t)
	workplaceNS := c.NewNamespace(t)
	uninstallAtCleanup(t, c, ns, "t1")
	args := []string{"--kubeconfig", c.KubeconfigPath(), "-n", ns, "--repo", testRepo, "--name", "t1", "--set", "rbac.clusterWide=true"}

	out := mustInstall(t, args...)
	for _, want := range []string{
		fmt.Sprintf("release %s/t1 installed: revision 1, chart platzwart-0.1.0, image ghcr.io/platzwart/platzwart:0.1.0", ns),
		fmt.Sprintf("controller ready: Deployment %s/t1, 1 ready replica(s)", ns),
		"kubectl get workplaces -A -w",
		fmt.Sprintf("kubectl -n %s logs deploy/t1 -f", ns),
		"Push webhook: off",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("install output lacks %q:\n%s", want, out)
		}
	}

	rel, revisions := lastRelease(t, c, ns, "t1")
	if rel.Info.Status != helmrelease.StatusDeployed || rel.Version != 1 || revisions != 1 {
		t.Errorf("release %s/t1: status %s, revision %d, %d revisions; want deployed, 1, 1", ns, rel.Info.Status, rel.Version, revisions)
	}

	ext, err := apiextensionsclient.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(t.Context(), "workplaces.platzwart.io", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Workplace CRD: %v", err)
	}
	established := false
	for _, cond := range crd.Status.Conditions {
		if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
			established = true
		}
	}
	if !established {
		t.Errorf("CRD workplaces.platzwart.io is not Established: %+v", crd.Status.Conditions)
	}

	d := controllerDeployment(t, cs, ns, "t1")
	pod := d.Spec.Template.Spec
	wantArgs := []string{
		"controller", "--name=t1", "--namespace=" + ns, "--leader-elect",
		"--repo=" + testRepo, "--branch=main", "--path=.", "--interval=1m",
		"--cache-dir=/var/cache/platzwart/git", "--requeue=10m", "--concurrency=4", "--parallelism=4",
		"--metrics-addr=:8080", "--probe-addr=:8081", "--webhook-addr=:9292", "--log-format=json", "--shutdown-grace=300s", "--retry-interval=30s",
	}
	if got := pod.Containers[0].Args; !slices.Equal(got, wantArgs) {
		t.Errorf("controller args:\n got %q\nwant %q", got, wantArgs)
	}
	if pod.ServiceAccountName != "t1" {
		t.Errorf("serviceAccountName %q, want t1", pod.ServiceAccountName)
	}
	sc := pod.Containers[0].SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("controller must run as non-root with a read-only root filesystem: pod %+v, container %+v", pod.SecurityContext, sc)
	}

	// The cluster-wide opt-in (rbac.clusterWide): what a reconcile does in any
	// workplace namespace, and nothing beyond.
	checkAccess(t, cs, ns, "t1", []access{
		{verb: "list", group: "platzwart.io", resource: "workplaces"},
		{verb: "watch", group: "platzwart.io", resource: "workplaces"},
		{verb: "patch", group: "platzwart.io", resource: "workplaces", namespace: workplaceNS},
		{verb: "update", group: "platzwart.io", resource: "workplaces", subresource: "status", namespace: workplaceNS},
		{verb: "create", resource: "namespaces"},
		{verb: "create", resource: "secrets", namespace: workplaceNS},
		{verb: "list", resource: "secrets", namespace: workplaceNS},
		{verb: "delete", resource: "secrets", namespace: workplaceNS},
		{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: ns},
		{verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: workplaceNS},
		{verb: "create", group: "apps", resource: "deployments", namespace: workplaceNS},
		{verb: "patch", group: "apps", resource: "statefulsets", namespace: workplaceNS},
		{verb: "watch", group: "batch", resource: "jobs", namespace: workplaceNS},
		{verb: "delete", resource: "persistentvolumeclaims", namespace: workplaceNS},
		{verb: "create", group: "gateway.networking.k8s.io", resource: "httproutes", namespace: workplaceNS},
		{verb: "create", group: "networking.k8s.io", resource: "networkpolicies", namespace: workplaceNS},
		{verb: "create", group: "events.k8s.io", resource: "events", namespace: workplaceNS},
		{verb: "list", resource: "pods", namespace: workplaceNS},
		// Metadata-only watches (ADR 0015); get and list grant as much already.
		{verb: "watch", resource: "secrets", namespace: workplaceNS},
		{verb: "watch", group: "apps", resource: "deployments", namespace: workplaceNS},
	}, []access{
		{verb: "delete", resource: "nodes"},
		{verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterroles"},
		{verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", namespace: workplaceNS},
		{verb: "delete", resource: "namespaces", name: workplaceNS},
		{verb: "delete", group: "platzwart.io", resource: "workplaces", namespace: workplaceNS},
		{verb: "update", group: "apiextensions.k8s.io", resource: "customresourcedefinitions"},
		{verb: "create", resource: "pods", subresource: "exec", namespace: workplaceNS},
		{verb: "create", resource: "pods", namespace: workplaceNS},
		{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: workplaceNS},
		{verb: "create", group: "admissionregistration.k8s.io", resource: "validatingwebhookconfigurations"},
	})

	// A second install is an upgrade that changes nothing in the cluster.
	out = mustInstall(t, args...)
	if want := fmt.Sprintf("release %s/t1 upgraded: revision 2", ns); !strings.Contains(out, want) {
		t.Errorf("second install output lacks %q:\n%s", want, out)
	}
	rel2, revisions := lastRelease(t, c, ns, "t1")
	if rel2.Info.Status != helmrelease.StatusDeployed || rel2.Version != 2 || revisions != 2 {
		t.Errorf("after the second install: status %s, revision %d, %d revisions; want deployed, 2, 2", rel2.Info.Status, rel2.Version, revisions)
	}
	if rel2.Manifest != rel.Manifest {
		t.Errorf("the second install rendered other manifests than the first")
	}
	d2 := controllerDeployment(t, cs, ns, "t1")
	if d2.Generation != d.Generation {
		t.Errorf("Deployment generation %d → %d: the second install changed the controller", d.Generation, d2.Generation)
	}
}

// TestInstallDefaultIsNamespaceScoped installs with the defaults: the controller
// reads Workplaces and what the preflight compares (Services, Ingresses, namespaces)
// cluster-wide, but writes nothing anywhere and creates no namespace until
// rbac.namespaces lists some (or rbac.clusterWide opts in).
func TestInstallDefaultIsNamespaceScoped(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientset(t, c)
	ns := c.NewNamespace(t)
	workplaceNS := c.NewNamespace(t)
	uninstallAtCleanup(t, c, ns, "t5")
	out := mustInstall(t, "--kubeconfig", c.KubeconfigPath(), "-n", ns, "--repo", testRepo, "--name", "t5")
	if !strings.Contains(out, "Workplace namespaces: none yet") {
		t.Errorf("install output does not say that no workplace namespace is allowed:\n%s", out)
	}
	checkAccess(t, cs, ns, "t5", []access{
		{verb: "list", group: "platzwart.io", resource: "workplaces"},
		{verb: "watch", group: "platzwart.io", resource: "workplaces"},
		{verb: "get", resource: "namespaces", name: workplaceNS},
		{verb: "list", resource: "services"},
		{verb: "list", group: "networking.k8s.io", resource: "ingresses"},
		{verb: "list", group: "gateway.networking.k8s.io", resource: "httproutes"},
	}, []access{
		{verb: "create", resource: "namespaces"},
		{verb: "create", resource: "secrets", namespace: workplaceNS},
		{verb: "get", resource: "secrets", namespace: workplaceNS},
		{verb: "list", resource: "secrets"},
		{verb: "patch", group: "platzwart.io", resource: "workplaces", namespace: workplaceNS},
		{verb: "update", group: "platzwart.io", resource: "workplaces", subresource: "status", namespace: workplaceNS},
		{verb: "create", group: "apps", resource: "deployments", namespace: workplaceNS},
		{verb: "create", resource: "services", namespace: workplaceNS},
		{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: workplaceNS},
	})
}

// TestInstallNamespacedRBACAndWebhook installs with rbac.namespaces, a Git secret and
// a webhook secret file: rights only in the listed namespace, get on the Git Secret
// only, the webhook token in a Secret of its own and never in Helm's storage.
func TestInstallNamespacedRBACAndWebhook(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientset(t, c)
	ns := c.NewNamespace(t)
	workplaceNS := c.NewNamespace(t)
	otherNS := c.NewNamespace(t)
	uninstallAtCleanup(t, c, ns, "t2")
	token := filepath.Join(t.TempDir(), "webhook-token")
	if err := os.WriteFile(token, []byte("s3cr3t-hmac-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	out := mustInstall(t, "--kubeconfig", c.KubeconfigPath(), "-n", ns, "--repo", testRepo, "--name", "t2",
		"--branch", "release", "--path", "clusters/prod", "--git-secret", ns+"/git-creds",
		"--webhook-secret-file", token, "--set", "rbac.namespaces={"+workplaceNS+"}")
	for _, want := range []string{
		"(branch release, path clusters/prod)",
		fmt.Sprintf("Service %s/t2 port 9292 (\"webhook\"); the token or HMAC key is Secret %s/t2-webhook key \"secret\"", ns, ns),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("install output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("install printed the webhook secret:\n%s", out)
	}

	sec, err := cs.CoreV1().Secrets(ns).Get(t.Context(), "t2-webhook", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("webhook Secret: %v", err)
	}
	if got := string(sec.Data["secret"]); got != "s3cr3t-hmac-key\n" {
		t.Errorf("webhook Secret holds %q, want the file's content", got)
	}
	rel, _ := lastRelease(t, c, ns, "t2")
	if strings.Contains(rel.Manifest, "s3cr3t") || strings.Contains(fmt.Sprint(rel.Config), "s3cr3t") {
		t.Errorf("the webhook secret is in Helm's release storage")
	}

	d := controllerDeployment(t, cs, ns, "t2")
	args := d.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--git-secret=" + ns + "/git-creds", "--webhook-secret-file=/etc/platzwart/webhook/secret", "--branch=release", "--path=clusters/prod"} {
		if !slices.Contains(args, want) {
			t.Errorf("controller args %q lack %q", args, want)
		}
	}
	if got := d.Spec.Template.Annotations[annotationWebhookSecret]; got != sec.ResourceVersion {
		t.Errorf("pod annotation %s = %q, want the Secret's resourceVersion %q", annotationWebhookSecret, got, sec.ResourceVersion)
	}

	checkAccess(t, cs, ns, "t2", []access{
		{verb: "list", group: "platzwart.io", resource: "workplaces"},
		{verb: "update", group: "platzwart.io", resource: "workplaces", subresource: "status", namespace: workplaceNS},
		{verb: "create", resource: "secrets", namespace: workplaceNS},
		{verb: "create", group: "apps", resource: "deployments", namespace: workplaceNS},
		{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: ns},
		{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: workplaceNS},
		{verb: "get", resource: "secrets", namespace: ns, name: "git-creds"},
	}, []access{
		{verb: "create", resource: "namespaces"},
		{verb: "create", resource: "secrets", namespace: otherNS},
		{verb: "get", resource: "secrets", namespace: otherNS},
		{verb: "get", resource: "secrets", namespace: "kube-system"},
		{verb: "get", resource: "secrets", namespace: ns, name: "t2-webhook"},
		{verb: "list", resource: "secrets", namespace: ns},
		{verb: "create", group: "apps", resource: "deployments", namespace: otherNS},
		{verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: otherNS},
	})
}

// renderedDeployment finds the Deployment in a YAML stream.
func renderedDeployment(t *testing.T, manifests string) *appsv1.Deployment {
	t.Helper()
	for _, doc := range strings.Split(manifests, "\n---") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil || tm.Kind != "Deployment" {
			continue
		}
		d := &appsv1.Deployment{}
		if err := yaml.Unmarshal([]byte(doc), d); err != nil {
			t.Fatalf("rendered Deployment: %v", err)
		}
		return d
	}
	t.Fatalf("no Deployment in the output:\n%s", manifests)
	return nil
}

// TestInstallDryRunTouchesNoCluster prints the manifests and creates nothing, and
// needs no reachable cluster at all.
func TestInstallDryRunTouchesNoCluster(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientset(t, c)
	token := filepath.Join(t.TempDir(), "webhook-token")
	if err := os.WriteFile(token, []byte("dry-run-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	const ns = "platzwart-dry-run-never-created"

	out, errOut, err := runCLI(t, "install", "--dry-run", "--kubeconfig", c.KubeconfigPath(), "-n", ns,
		"--repo", testRepo, "--name", "dry", "--webhook-secret-file", token)
	if err != nil {
		t.Fatalf("install --dry-run: %v\n%s", err, errOut)
	}
	for _, want := range []string{"kind: CustomResourceDefinition", "name: workplaces.platzwart.io", "kind: ClusterRole", "kind: Deployment", "--repo=" + testRepo} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q", want)
		}
	}
	if strings.Contains(out+errOut, "dry-run-token") {
		t.Errorf("dry run printed the webhook secret")
	}
	if d := renderedDeployment(t, out); d.Namespace != "" && d.Namespace != ns {
		t.Errorf("rendered Deployment in namespace %q, want %q", d.Namespace, ns)
	}
	if _, err := cs.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s after a dry run: %v, want NotFound", ns, err)
	}
	if _, err := cs.RbacV1().ClusterRoles().Get(t.Context(), "dry-"+ns+"-controller", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRole after a dry run: %v, want NotFound", err)
	}

	// Not even a connection: a kubeconfig that does not exist is never read.
	if _, errOut, err := runCLI(t, "install", "--dry-run", "--kubeconfig", filepath.Join(t.TempDir(), "missing"), "--repo", testRepo); err != nil {
		t.Errorf("install --dry-run with a missing kubeconfig: %v\n%s", err, errOut)
	}
}

// TestInstallChartArgsAreControllerFlags renders the chart with every option on and
// parses the Deployment's arguments with `platzwart controller`'s own flags, so a flag
// renamed in one place breaks here and not in a cluster.
func TestInstallChartArgsAreControllerFlags(t *testing.T) {
	t.Parallel()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, "install", "--dry-run", "-n", "ops", "--repo", testRepo, "--name", "pw",
		"--git-secret", "git", "--webhook-secret-file", token,
		"--set", "git.tag=v1.2.0", "--set", "git.interval=30s", "--set", "git.verify.mode=ssh", "--set", "git.verify.keysSecret.name=keys",
		"--set-string", `controller.workplaceSelector=shard in (a\, b)`, "--set", "controller.logFormat=text",
		"--set", "controller.concurrency=2", "--set", "controller.parallelism=8", "--set", "controller.requeue=1h",
		"--set", "replicas=2")
	if err != nil {
		t.Fatalf("install --dry-run: %v\n%s", err, errOut)
	}
	args := renderedDeployment(t, out).Spec.Template.Spec.Containers[0].Args
	if len(args) == 0 || args[0] != "controller" {
		t.Fatalf("args %q: want the controller command first", args)
	}
	root := newRootCommand(&bytes.Buffer{}, &bytes.Buffer{})
	ctl, _, err := root.Find([]string{"controller"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.ParseFlags(args[1:]); err != nil {
		t.Fatalf("`platzwart controller` rejects the chart's args %q: %v", args[1:], err)
	}
	for flag, want := range map[string]string{
		"name": "pw", "namespace": "ops", "leader-elect": "true", "repo": testRepo, "tag": "v1.2.0", "interval": "30s",
		"git-secret": "ops/git", "verify": "ssh", "verify-keys": "/etc/platzwart/verify/keys",
		"webhook-secret-file": "/etc/platzwart/webhook/secret", "workplace-selector": "shard in (a, b)",
		"log-format": "text", "concurrency": "2", "parallelism": "8", "requeue": "1h0m0s",
		"cache-dir": "/var/cache/platzwart/git", "metrics-addr": ":8080", "probe-addr": ":8081", "webhook-addr": ":9292",
	} {
		f := ctl.Flags().Lookup(flag)
		if f == nil {
			t.Errorf("flag --%s: not a flag of `platzwart controller`", flag)
			continue
		}
		if f.Value.String() != want {
			t.Errorf("flag --%s = %q, want %q", flag, f.Value.String(), want)
		}
	}
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--branch") }) {
		t.Errorf("args %q: --branch next to --tag", args)
	}
}

// TestInstallRejectsBadInputBeforeTheCluster checks that flags and values the chart
// rejects fail before any connection, with and without --dry-run.
func TestInstallRejectsBadInputBeforeTheCluster(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing-kubeconfig")
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no repo", nil, `required flag(s) "repo" not set`},
		{"replicas without leader election", []string{"--repo", testRepo, "--set", "replicas=2", "--set", "leaderElection.enabled=false"}, "leaderElection.enabled=true"},
		{"bad git secret", []string{"--repo", testRepo, "--git-secret", "a/b/c"}, "/git/secret"},
		{"unknown value", []string{"--repo", testRepo, "--set", "gti.url=x"}, "additional properties 'gti' not allowed"},
		{"bad --set", []string{"--repo", testRepo, "--set", "novalue"}, `--set "novalue"`},
		{"empty webhook secret", []string{"--repo", testRepo, "--webhook-secret-file", empty}, "the file is empty"},
		{"missing webhook secret", []string{"--repo", testRepo, "--webhook-secret-file", empty + ".missing"}, "--webhook-secret-file"},
		{"latest image", []string{"--repo", testRepo, "--set", "image.tag=latest"}, "/image/tag"},
		{"bool as node selector", []string{"--repo", testRepo, "--set", "nodeSelector.disk=true"}, "/nodeSelector/disk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Without --dry-run too: every check comes before a connection (the
			// kubeconfig does not exist).
			for _, dry := range []bool{true, false} {
				args := append([]string{"install", "--kubeconfig", missing}, tc.args...)
				if dry {
					args = append(args, "--dry-run")
				}
				_, _, err := runCLI(t, args...)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("platzwart %s: error %v, want one containing %q", strings.Join(args, " "), err, tc.want)
				}
			}
		})
	}
}

// TestInstallReportsANotReadyController installs a controller whose pod can never be
// scheduled: install must wait, give up after --timeout and say what to look at.
func TestInstallReportsANotReadyController(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	uninstallAtCleanup(t, c, ns, "t3")
	start := time.Now()
	_, errOut, err := runCLI(t, "install", "--kubeconfig", c.KubeconfigPath(), "-n", ns, "--repo", testRepo, "--name", "t3",
		"--timeout", "3s", "--set-string", `nodeSelector.platzwart\.io/no-such-node=true`)
	if err == nil {
		t.Fatalf("install of an unschedulable controller succeeded:\n%s", errOut)
	}
	t.Logf("install failed as it should: %v", err)
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("install gave up after %s, before --timeout 3s", took)
	}
	for _, want := range []string{
		fmt.Sprintf("release %s/t3 revision 1 was installed but is not ready: after 3s: Deployment %s/t3:", ns, ns),
		"didn't match Pod's node affinity/selector",
		fmt.Sprintf("kubectl -n %s describe deployment t3", ns),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	// Installing again with a schedulable pod recovers: an upgrade that becomes ready.
	out := mustInstall(t, "--kubeconfig", c.KubeconfigPath(), "-n", ns, "--repo", testRepo, "--name", "t3")
	if want := fmt.Sprintf("release %s/t3 upgraded: revision 2", ns); !strings.Contains(out, want) {
		t.Errorf("install after the failure: output lacks %q:\n%s", want, out)
	}
}

// TestInstallAllOptionsPassServerSideValidation renders the chart with every option
// on and has the API server validate each object strictly (server-side dry run: no
// object is stored), covering what the installs above leave at their defaults.
func TestInstallAllOptionsPassServerSideValidation(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	workplaceNS := c.NewNamespace(t)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, "install", "--dry-run", "-n", ns, "--repo", testRepo, "--name", "all",
		"--git-secret", "git", "--webhook-secret-file", token,
		"--set", "git.tag=v1.2.0", "--set", "git.verify.mode=openpgp", "--set", "git.verify.keysSecret.name=keys",
		"--set", "replicas=2", "--set", "rbac.namespaces={"+workplaceNS+"}",
		"--set", "rbac.extraRules[0].apiGroups={},rbac.extraRules[0].resources={serviceaccounts},rbac.extraRules[0].verbs={get,create}",
		"--set", "networkPolicy.webhookFrom[0].namespaceSelector.matchLabels.team=ingress",
		"--set", "imagePullSecrets[0].name=registry", "--set-string", "podLabels.team=ops",
		"--set", "tolerations[0].key=dedicated,tolerations[0].operator=Exists")
	if err != nil {
		t.Fatalf("install --dry-run: %v\n%s", err, errOut)
	}
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath()})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, doc := range strings.Split(out, "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("rendered document: %v\n%s", err, doc)
		}
		if len(u.Object) == 0 || u.GetKind() == "CustomResourceDefinition" {
			continue
		}
		if u.GetNamespace() == "" {
			u.SetNamespace(ns) // ignored for cluster-scoped kinds
		}
		mapping, err := kc.Mapper.RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
		if err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
			u.SetNamespace("")
		}
		if err := kc.Client.Create(t.Context(), u, client.DryRunAll, client.FieldValidation("Strict")); err != nil {
			t.Errorf("%s %s/%s: the API server rejects it: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		kinds[u.GetKind()]++
	}
	want := map[string]int{"ServiceAccount": 1, "ClusterRole": 2, "ClusterRoleBinding": 1, "Role": 2, "RoleBinding": 3,
		"Service": 1, "Deployment": 1, "NetworkPolicy": 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("validated objects by kind: %v, want %v", kinds, want)
	}
}

// controllerStarted is set by the one test that runs `platzwart controller` in process.
var controllerStarted atomic.Bool

// impersonatingKubeconfig writes a copy of the admin kubeconfig whose requests are
// made as the ServiceAccount ns/sa: its RBAC, and nothing else, decides what they may do.
func impersonatingKubeconfig(t *testing.T, admin, ns, sa string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok || cfg.AuthInfos[ctx.AuthInfo] == nil {
		t.Fatalf("kubeconfig %s: no user for the current context %q", admin, cfg.CurrentContext)
	}
	user := cfg.AuthInfos[ctx.AuthInfo]
	user.Impersonate = "system:serviceaccount:" + ns + ":" + sa
	user.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInstalledRBACSufficesForAReconcile runs `platzwart controller` in process with
// the installed Deployment's own arguments, as the installed ServiceAccount
// (impersonation), installed namespace-scoped (rbac.namespaces lists the workplace's
// namespace, which install creates; a Secret or namespace outside it is forbidden),
// against a Git repository holding the example workplace: the Git source applies the
// Workplace; the reconcile generates Secrets, installs seven releases with hooks,
// takes the workplace lock, writes events and the status. Then a pushed change (Jitsi →
// BigBlueButton, files off, dataPolicy Delete) uninstalls two releases and deletes
// Nextcloud's volumes. All under the chart's RBAC only.
func TestInstalledRBACSufficesForAReconcile(t *testing.T) {
	t.Parallel()
	if !controllerStarted.CompareAndSwap(false, true) {
		t.Skip("the controller runs once per test process (its metrics and controller names are process-wide); skipped with -count > 1")
	}
	c := cluster.FromTest(t)
	cs := clientset(t, c)
	ns := c.NewNamespace(t)
	workplaceNS := ns + "-wp"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cs.CoreV1().Namespaces().Delete(ctx, workplaceNS, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", workplaceNS, err)
		}
	})
	uninstallAtCleanup(t, c, ns, "t4")

	example, err := os.ReadFile("../../examples/workplace/workplace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(example), "namespace: demo", "namespace: "+workplaceNS, 1)
	doc = strings.Replace(doc, "  values:\n", "  values:\n    jitsi: {jvb: {port: 31901}}\n", 1)
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.StopHTTP(); _ = os.RemoveAll(srv.Root()) })
	if err := srv.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	fixture := t.TempDir()
	if err := os.WriteFile(filepath.Join(fixture, "workplace.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := srv.InitRepo(fixture, "main", "workplaces.git"); err != nil {
		t.Fatal(err)
	}
	repo := srv.HTTPAddress() + "/workplaces.git"

	// Namespace-scoped (the default): install creates the one allowed workplace namespace.
	mustInstall(t, "--kubeconfig", c.KubeconfigPath(), "-n", ns, "--repo", repo, "--name", "t4", "--set", "git.interval=1s",
		"--set", "rbac.namespaces={"+workplaceNS+"}")
	// Outside the list the controller's ServiceAccount writes nothing: a Secret in
	// another namespace is forbidden for the very identity that reconciles.
	otherNS := c.NewNamespace(t)
	impersonated, err := clientcmd.BuildConfigFromFlags("", impersonatingKubeconfig(t, c.KubeconfigPath(), ns, "t4"))
	if err != nil {
		t.Fatal(err)
	}
	asController, err := kubernetes.NewForConfig(impersonated)
	if err != nil {
		t.Fatal(err)
	}
	probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "outside-the-list"}, StringData: map[string]string{"k": "v"}}
	if _, err := asController.CoreV1().Secrets(otherNS).Create(t.Context(), probe, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("creating a Secret in %s, outside rbac.namespaces, as the controller: %v; want forbidden", otherNS, err)
	}
	if _, err := asController.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns + "-new"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("creating a namespace as the namespace-scoped controller: %v; want forbidden", err)
	}
	d := controllerDeployment(t, cs, ns, "t4")
	args := []string{"--kubeconfig", impersonatingKubeconfig(t, c.KubeconfigPath(), ns, "t4")}
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		switch {
		case strings.HasPrefix(a, "--cache-dir="):
			a = "--cache-dir=" + t.TempDir()
		case strings.HasPrefix(a, "--metrics-addr="):
			a = "--metrics-addr=0"
		case strings.HasPrefix(a, "--probe-addr="):
			a = "--probe-addr=0"
		}
		args = append(args, a)
	}
	// --kubeconfig goes after the subcommand name.
	args[0], args[1], args[2] = args[2], args[0], args[1]
	if args[0] != "controller" {
		t.Fatalf("controller args %q", args)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cmd := newRootCommand(io.Discard, io.Discard)
		cmd.SetArgs(args)
		done <- cmd.ExecuteContext(ctx)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("platzwart %s: %v", strings.Join(args, " "), err)
			}
		case <-time.After(time.Minute):
			t.Error("the controller did not stop within a minute")
		}
	}
	t.Cleanup(stop)

	scheme, err := controller.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.Config(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	waitReady := func(what string, revision string) *v1alpha1.Workplace {
		t.Helper()
		var w v1alpha1.Workplace
		start := time.Now()
		err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
			if err := cl.Get(ctx, client.ObjectKey{Namespace: workplaceNS, Name: "demo"}, &w); err != nil {
				return false, nil
			}
			ready := meta.FindStatusCondition(w.Status.Conditions, "Ready")
			if ready != nil && ready.Status == metav1.ConditionFalse && strings.Contains(ready.Message, "forbidden") {
				return false, fmt.Errorf("%s: %s", ready.Reason, ready.Message) // a missing rule: retrying cannot help
			}
			return ready != nil && ready.Status == metav1.ConditionTrue && strings.HasSuffix(w.Status.LastAppliedRevision, revision), nil
		})
		if err != nil {
			t.Fatalf("workplace %s/demo: %s: not Ready under the chart's RBAC: %v; status: %+v", workplaceNS, what, err, w.Status)
		}
		t.Logf("workplace %s/demo: %s: Ready after %s: %s", workplaceNS, what, time.Since(start).Round(time.Millisecond),
			meta.FindStatusCondition(w.Status.Conditions, "Ready").Message)
		return &w
	}
	w := waitReady("first install", "")
	if len(w.Status.Components) != 9 {
		t.Errorf("status components %+v, want 9", w.Status.Components)
	}
	if w.Labels[controller.LabelSource] != "t4" {
		t.Errorf("Workplace labels %v: want %s=t4 (--name is the release name)", w.Labels, controller.LabelSource)
	}
	// Events are sent asynchronously, and the three installs of one Workplace may be
	// one event series: at least one must arrive.
	err = wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		events, err := cs.EventsV1().Events(workplaceNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return slices.ContainsFunc(events.Items, func(e eventsv1.Event) bool { return e.Reason == "ReleaseInstall" }), nil
	})
	if err != nil {
		t.Errorf("no ReleaseInstall event in %s (events are part of the RBAC): %v", workplaceNS, err)
	}
	lease, err := cs.CoordinationV1().Leases(ns).Get(t.Context(), "t4-controller", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("leader election Lease %s/t4-controller: %v %+v", ns, err, lease)
	}

	// Swap video, switch files off and delete the data of what is removed: Helm
	// uninstalls and PVC deletes.
	before, err := cs.CoreV1().PersistentVolumeClaims(workplaceNS).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=demo-nextcloud"})
	if err != nil || len(before.Items) == 0 {
		t.Fatalf("Nextcloud's volumes before the swap: %v, %d claims", err, len(before.Items))
	}
	swapped := strings.NewReplacer("video: jitsi", "video: bigbluebutton\n    files: none", "dataPolicy: Retain", "dataPolicy: Delete").Replace(doc)
	w = waitReady("swap to bigbluebutton, files off", pushWorkplace(t, repo, swapped))
	if len(w.Status.Components) != 8 || slices.ContainsFunc(w.Status.Components, func(c v1alpha1.ComponentStatus) bool {
		return c.Component == "jitsi" || c.Component == "nextcloud"
	}) {
		t.Errorf("status components after the swap: %+v, want 8 without jitsi and nextcloud", w.Status.Components)
	}
	for _, p := range before.Items {
		got, err := cs.CoreV1().PersistentVolumeClaims(workplaceNS).Get(t.Context(), p.Name, metav1.GetOptions{})
		if err == nil && got.DeletionTimestamp == nil {
			t.Errorf("volume %s of nextcloud kept under dataPolicy Delete", p.Name)
		}
	}
	stop()
}

// pushWorkplace commits content as workplace.yaml to the repository and pushes it
// with the git CLI; it returns the commit.
func pushWorkplace(t *testing.T, repo, content string) string {
	t.Helper()
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_AUTHOR_NAME=ops", "GIT_AUTHOR_EMAIL=ops@example.org",
			"GIT_COMMITTER_NAME=ops", "GIT_COMMITTER_EMAIL=ops@example.org")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("clone", "--branch", "main", repo, ".")
	if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	git("commit", "-am", "swap video")
	git("push", "origin", "main")
	return git("rev-parse", "HEAD")
}

// TestChartCRDIsTheGeneratedOne keeps charts/platzwart/crds in step with the CRD
// controller-gen writes to config/crd (the one `platzwart install` applies).
func TestChartCRDIsTheGeneratedOne(t *testing.T) {
	t.Parallel()
	chartCRD, err := fs.ReadFile(platzwart.Builtin(), "charts/platzwart/crds/platzwart.io_workplaces.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(chartCRD, platzwart.WorkplaceCRD()) {
		t.Error("charts/platzwart/crds/platzwart.io_workplaces.yaml differs from config/crd/platzwart.io_workplaces.yaml: copy it again (make generate)")
	}
}
