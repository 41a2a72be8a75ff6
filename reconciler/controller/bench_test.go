package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/controller"
	"github.com/platzwart/platzwart/reconciler/source"
)

// BenchmarkWebhookToReady pushes a one-value change and sends the webhook, then
// measures how long until the controller has fetched and applied the new revision
// (the Workplace carries it: its reconcile starts now) and until the Workplace is
// Ready at it. Run with -benchtime=5x.
func BenchmarkWebhookToReady(b *testing.B) {
	c := cluster.FromTest(b)
	ns := c.NewNamespace(b)
	doc := func(class string) string {
		return workplaceDoc(b, ns, map[string]string{"dataPolicy: Retain": "dataPolicy: Retain\n  routing: {ingressClassName: " + class + "}"})
	}
	repo := newGitRepo(b, doc("a"))
	secret := []byte("bench")
	hook := freeAddr(b)
	runController(b, c, controller.Options{
		Name:          "bench",
		Source:        source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: b.TempDir()},
		Interval:      time.Hour,
		WebhookAddr:   hook,
		WebhookSecret: secret,
	})
	cl := workplaceClient(b, c)
	waitFor(b, cl, ns, repo.git("rev-parse", "HEAD"), true)
	var toApplied, toReady time.Duration
	i := 0
	for b.Loop() {
		i++
		commit := repo.push(doc(fmt.Sprintf("class-%d", i)), "change")
		start := time.Now()
		sendGitHubPush(b, hook, secret, commit)
		waitFor(b, cl, ns, commit, false)
		toApplied += time.Since(start)
		waitFor(b, cl, ns, commit, true)
		toReady += time.Since(start)
	}
	b.ReportMetric(float64(toApplied.Milliseconds())/float64(b.N), "webhook-to-reconcile-ms")
	b.ReportMetric(toReady.Seconds()/float64(b.N), "webhook-to-ready-s")
}

// waitFor waits until the Workplace carries commit (ready=false) or is Ready at it.
func waitFor(b testing.TB, cl client.Client, ns, commit string, ready bool) {
	b.Helper()
	err := wait.PollUntilContextTimeout(b.Context(), 20*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var w v1alpha1.Workplace
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo"}, &w); err != nil {
			return false, nil
		}
		if !ready {
			return strings.HasSuffix(w.Annotations[controller.AnnotationRevision], commit), nil
		}
		return readyAt(commit)(&w), nil
	})
	if err != nil {
		b.Fatalf("waiting for %s (ready=%v): %v", commit, ready, err)
	}
}
