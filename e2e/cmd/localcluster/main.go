// Command localcluster runs the local Kubernetes control plane of the e2e
// tests for interactive use and the demo.
//
//	localcluster up      start a control plane that keeps running after the
//	                     command exits, and print its KUBECONFIG
//	localcluster down    stop it, and the leftovers of crashed test runs
//	localcluster status  list the recorded control planes
//	localcluster build   only build the binaries (into the user cache)
//
// See e2e/README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/rest"

	"github.com/platzwart/platzwart/e2e/cluster"
)

const usage = `usage: localcluster up|down|status|build

  up      start a local control plane in the background and print its KUBECONFIG
  down    stop it, and the leftovers of crashed test runs
  status  list the recorded control planes
  build   only build the binaries (into the user cache)
`

func main() {
	if len(os.Args) != 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch os.Args[1] {
	case "up":
		err = up(ctx)
	case "down":
		err = down(ctx)
	case "status":
		err = status()
	case "build":
		var bins *cluster.Binaries
		if bins, err = cluster.Build(ctx, cluster.Options{}); err == nil {
			fmt.Println(bins.Dir)
		}
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "localcluster %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// up starts a detached control plane, unless one is running already.
func up(ctx context.Context) error {
	runs, err := cluster.Runs(cluster.Options{})
	if err != nil {
		return err
	}
	for _, r := range runs {
		if r.Detached && allRunning(r) {
			fmt.Fprintf(os.Stderr, "a control plane is running already (started %s, logs in %s)\n", r.Started.Format(time.DateTime), r.Dir)
			printKubeconfig(r.Kubeconfig)
			return nil
		}
	}
	c, err := cluster.Start(ctx, cluster.Options{Detached: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "logs in %s; stop it with: make cluster-down\n", c.RunDir())
	printKubeconfig(c.KubeconfigPath())
	return nil
}

func printKubeconfig(path string) {
	fmt.Println(path)
	fmt.Printf("export KUBECONFIG=%s\n", path)
}

// down stops the detached control planes and the orphaned ones of crashed
// test binaries.
func down(ctx context.Context) error {
	reaped, err := cluster.Reap(ctx, cluster.Options{}, true)
	for _, r := range reaped {
		if r.Detached {
			fmt.Fprintf(os.Stderr, "stopped the control plane started %s\n", r.Started.Format(time.DateTime))
		} else {
			fmt.Fprintf(os.Stderr, "stopped the leftover control plane of a crashed test run (logs kept in %s)\n", r.Dir)
		}
	}
	if err != nil {
		return err
	}
	if len(reaped) == 0 {
		fmt.Fprintln(os.Stderr, "no control plane to stop")
	}
	return nil
}

// status lists the recorded control planes and whether they answer.
func status() error {
	runs, err := cluster.Runs(cluster.Options{})
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		fmt.Println("no control plane")
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STARTED\tKIND\tOWNER\tAPISERVER\tPROCESSES\tKUBECONFIG")
	for _, r := range runs {
		kind, owner := "test", fmt.Sprintf("pid %d", r.Owner)
		switch {
		case r.Detached:
			kind, owner = "detached", "-"
		case !r.OwnerRunning():
			owner += " (gone: make cluster-down reaps it)"
		}
		running := 0
		for _, p := range r.Processes {
			if p.Running() {
				running++
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d/%d running\t%s\n",
			r.Started.Format(time.DateTime), kind, owner, readyz(r.Kubeconfig), running, len(r.Processes), r.Kubeconfig)
	}
	return w.Flush()
}

func allRunning(r cluster.Run) bool {
	for _, p := range r.Processes {
		if !p.Running() {
			return false
		}
	}
	return len(r.Processes) > 0
}

// readyz asks the apiserver of a kubeconfig whether it is ready.
func readyz(kubeconfig string) string {
	c, err := cluster.Attach(kubeconfig)
	if err != nil {
		return "no kubeconfig"
	}
	cfg := c.Config()
	cfg.Timeout = 2 * time.Second
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return "unknown"
	}
	resp, err := client.Get(cfg.Host + "/readyz")
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "timeout"
		}
		return "down"
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	return "ready"
}
