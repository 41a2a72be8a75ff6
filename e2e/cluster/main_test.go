package cluster_test

import (
	"context"
	"os"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/platzwart/platzwart/e2e/cluster"
)

func TestMain(m *testing.M) { os.Exit(cluster.RunTests(m)) }

// waitFor polls condition every 250 ms until it returns true, failing the test
// after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, condition func(ctx context.Context) (bool, error)) {
	t.Helper()
	start := time.Now()
	var lastErr error
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := condition(ctx)
		if err != nil {
			lastErr = err
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("wait for %s: %v (last error: %v)", what, err, lastErr)
	}
	t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
}
