// Command platzwart keeps a self-hosted, sovereign workplace in the state a Git
// repository declares. This binary is thin: flags in, reconciler packages do the work.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	// The controller-runtime client logs through a process-wide logger; the CLI reports
	// what it does itself.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", formatError(err))
		os.Exit(1)
	}
}
