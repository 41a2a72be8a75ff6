package cluster_test

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"

	"github.com/platzwart/platzwart/e2e/cluster"
)

// TestHelmInstallWaits installs a chart with the Helm SDK, in process, and
// waits for its Deployment and its post-install Job hook.
func TestHelmInstallWaits(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)

	cfg := new(action.Configuration)
	if err := cfg.Init(c.RESTClientGetter(ns), ns, "secret", t.Logf); err != nil {
		t.Fatalf("init helm: %v", err)
	}
	chart, err := loader.Load("testdata/tiny")
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	install := action.NewInstall(cfg)
	install.ReleaseName = "tiny"
	install.Namespace = ns
	install.Wait = true
	install.WaitForJobs = true
	install.Timeout = 2 * time.Minute

	start := time.Now()
	rel, err := install.RunWithContext(t.Context(), chart, map[string]any{"replicaCount": 2})
	if err != nil {
		t.Fatalf("helm install: %v", err)
	}
	t.Logf("helm install --wait took %s", time.Since(start).Round(time.Millisecond))
	if rel.Info.Status != release.StatusDeployed {
		t.Fatalf("release status %s, want %s", rel.Info.Status, release.StatusDeployed)
	}

	client := kubernetes.NewForConfigOrDie(c.Config())
	d, err := client.AppsV1().Deployments(ns).Get(t.Context(), "tiny", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get deployment: %v", err)
	}
	if d.Status.AvailableReplicas != 2 {
		t.Errorf("deployment tiny has %d available replicas, want 2", d.Status.AvailableReplicas)
	}
	job, err := client.BatchV1().Jobs(ns).Get(t.Context(), "tiny-post-install", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get hook job: %v", err)
	}
	complete := false
	for _, cond := range job.Status.Conditions {
		if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
			complete = true
		}
	}
	if !complete {
		t.Errorf("hook job tiny-post-install is not Complete: %+v", job.Status.Conditions)
	}
}
