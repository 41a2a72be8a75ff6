package scale_test

import (
	"flag"
	"io"
	"log"
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/platzwart/platzwart/e2e/cluster"
)

// TestMain starts the control plane only for benchmarks: this package has no tests,
// and `go test ./...` must not build or start anything for it.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run())
	}
	// The Git server on loopback logs every request with the standard logger: the
	// controller polls it every two seconds.
	log.SetOutput(io.Discard)
	ctrllog.SetLogger(logr.Discard())
	// kube-controller-manager's and kube-scheduler's own rate limits (20 and 50
	// requests a second) would bound a converge of hundreds of roll-outs, not the
	// controller measured: lifted, as kwokctl does for its scale tests.
	os.Exit(cluster.RunTestsWith(m, cluster.Options{UnlimitedClients: true}))
}
