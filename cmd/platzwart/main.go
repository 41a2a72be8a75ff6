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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The first SIGINT or SIGTERM stops the work gracefully: nothing new starts, Helm
	// actions in progress finish (apply --grace, controller --shutdown-grace). After it
	// the default handling is back, so a second Ctrl-C ends the process at once.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sigs:
			signal.Stop(sigs)
			fmt.Fprintf(os.Stderr, "%s: stopping; work in progress finishes, send it again to abort at once\n", s)
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		if !silent(err) {
			fmt.Fprintln(os.Stderr, "Error:", formatError(err))
		}
		os.Exit(exitCode(err))
	}
}
