package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/release"
)

// connect builds the clients from the kubectl-style flags.
func connect(g *globalFlags) (*kube.Cluster, error) {
	c, err := kube.Connect(kube.Options{Kubeconfig: g.kubeconfig, Context: g.context})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	return c, nil
}

// progressPrinter prints one line per release step with the elapsed time.
func progressPrinter(w io.Writer) func(release.Event) {
	var mu sync.Mutex
	start := time.Now()
	return func(ev release.Event) {
		mu.Lock()
		defer mu.Unlock()
		msg := ev.Message
		if ev.Elapsed > 0 {
			msg = strings.TrimSpace(fmt.Sprintf("(%s) %s", ev.Elapsed.Round(100*time.Millisecond), msg))
		}
		fmt.Fprintf(w, "[%6.1fs] %-24s %-11s %s\n", time.Since(start).Seconds(), ev.Release, ev.Step, msg)
	}
}

func newApplyCommand(g *globalFlags) *cobra.Command {
	var (
		parallelism        int
		grace, lockTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "apply [dir]",
		Short: "Make the cluster match the workplaces in dir: install, upgrade, prune, wait until ready",
		Long: `apply plans and renders every Workplace in dir (default .); when anything is invalid it
stops before touching the cluster. Then it generates missing Secrets, acts on each
release in dependency order (independent ones in parallel), waits until each is
ready, rolls back failed upgrades and removes components no longer selected once
everything else is ready. The exit status is non-zero when any release failed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			results, c, err := renderAndConnect(cmd.Context(), args, g)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			rec := reconciler.New(c, release.Options{Parallelism: parallelism, Progress: progressPrinter(cmd.ErrOrStderr())}, release.Holder("platzwart-cli"))
			rec.Grace = grace
			failed := 0
			for _, r := range results {
				p := r.plan
				fmt.Fprintf(cmd.ErrOrStderr(), "applying workplace %s/%s (%d releases)\n", p.Namespace, p.Workplace, len(p.Releases))
				start := time.Now()
				rep, err := reconcileWaitingForLock(cmd.Context(), cmd.ErrOrStderr(), rec, p, lockTimeout)
				if err != nil {
					return err
				}
				printSummary(out, p, rep, time.Since(start))
				if rep.Failed() {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d workplace(s) not ready; see the summary above", failed)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&parallelism, "parallelism", 4, "releases acted on at once")
	cmd.Flags().DurationVar(&grace, "grace", 2*time.Minute, "after Ctrl-C or SIGTERM, how long Helm actions in progress may finish (a second Ctrl-C aborts at once)")
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", 2*time.Minute, "how long to wait for another process's workplace lease (0: do not wait)")
	return cmd
}

// reconcileWaitingForLock reconciles p, waiting while another process holds the
// workplace's lease (a lease not renewed for its duration is taken over; one held by
// an ended process of this host at once).
func reconcileWaitingForLock(ctx context.Context, stderr io.Writer, rec *reconciler.Reconciler, p *plan.Plan, timeout time.Duration) (*reconciler.Report, error) {
	deadline := time.Now().Add(timeout)
	for {
		rep, err := rec.Reconcile(ctx, p)
		var locked *release.LockedError
		if !errors.As(err, &locked) || time.Now().After(deadline) {
			return rep, err
		}
		fmt.Fprintf(stderr, "waiting: %v\n", err)
		select {
		case <-ctx.Done():
			return rep, err
		case <-time.After(5 * time.Second):
		}
	}
}

// printSummary prints what apply did, per release.
func printSummary(w io.Writer, p *plan.Plan, rep *reconciler.Report, took time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RELEASE\tACTION\tREVISION\tREADY\tDURATION\tMESSAGE")
	for _, o := range rep.Result.Outcomes {
		rev := o.NewRevision
		if rev == 0 {
			rev = o.Revision
		}
		msg := o.Err
		if msg == "" {
			msg = o.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%v\t%s\t%s\n", o.Release, o.Action, rev, o.Ready, o.Duration.Round(10*time.Millisecond), msg)
	}
	tw.Flush()
	for _, s := range rep.Secrets {
		fmt.Fprintf(w, "generated secret %s\n", s)
	}
	for _, v := range rep.KeptVolumes {
		fmt.Fprintf(w, "kept volume %s (dataPolicy %s: reattached if the component is selected again)\n", v, p.DataPolicy)
	}
	for _, v := range rep.DeletedVolumes {
		fmt.Fprintf(w, "deleted volume %s (dataPolicy Delete)\n", v)
	}
	fmt.Fprintf(w, "workplace %s/%s: %d releases, %d failed, in %s\n", p.Namespace, p.Workplace, len(rep.Result.Outcomes), len(rep.Result.Failed()), took.Round(10*time.Millisecond))
}

// planEntry is one line of `platzwart plan`.
type planEntry struct {
	Workplace string   `json:"workplace"`
	Release   string   `json:"release"`
	Component string   `json:"component"`
	Action    string   `json:"action"`
	Reason    string   `json:"reason"`
	Changed   []string `json:"changedValues,omitempty"`
}

func newPlanCommand(g *globalFlags) *cobra.Command {
	var out printer
	cmd := &cobra.Command{
		Use:   "plan [dir]",
		Short: "Show what apply would change in the cluster, per release, without changing anything",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			results, c, err := renderAndConnect(cmd.Context(), args, g)
			if err != nil {
				return err
			}
			eng := release.New(c, release.Options{})
			var entries []planEntry
			var regs []oidcRegistration
			for _, r := range results {
				regs = append(regs, registrations(r.plan)...)
				// Digests cover the content versions of the Secrets each release uses, as
				// apply computes them; without them every release would look changed.
				p, err := reconciler.WithSecretVersions(cmd.Context(), c, r.plan)
				if err != nil {
					return err
				}
				steps, err := eng.Decide(cmd.Context(), p)
				if err != nil {
					return err
				}
				diffs := eng.ValueChanges(steps)
				for _, s := range steps {
					entries = append(entries, planEntry{Workplace: r.plan.Namespace + "/" + r.plan.Workplace, Release: s.Release,
						Component: s.Component, Action: string(s.Action), Reason: s.Reason, Changed: diffs[s.Release]})
				}
			}
			if out.format != "table" {
				return out.print(cmd.OutOrStdout(), planOutput{Releases: entries, OIDCClients: regs}, nil)
			}
			err = out.print(cmd.OutOrStdout(), entries, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "WORKPLACE\tRELEASE\tACTION\tREASON\tCHANGED VALUES")
				for _, e := range entries {
					changed := strings.Join(e.Changed, ", ")
					if changed == "" {
						changed = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Workplace, e.Release, e.Action, e.Reason, changed)
				}
			})
			if err != nil {
				return err
			}
			return printRegistrations(cmd.OutOrStdout(), regs)
		},
	}
	cmd.Flags().StringVarP(&out.format, "output", "o", "table", "output format: "+validFormats)
	return cmd
}

func newStatusCommand(g *globalFlags) *cobra.Command {
	var out printer
	cmd := &cobra.Command{
		Use:   "status [workplace]",
		Short: "Show the components of the workplaces in a namespace: chart, revision, readiness",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := connectNamespace(g)
			if err != nil {
				return err
			}
			workplace := ""
			if len(args) == 1 {
				workplace = args[0]
			}
			states, err := release.New(c, release.Options{}).Status(cmd.Context(), ns, workplace)
			if err != nil {
				return err
			}
			wps, err := workplaceResources(cmd.Context(), c, ns, workplace)
			if err != nil {
				return err
			}
			if out.format != "table" {
				return out.print(cmd.OutOrStdout(), statusOutput{Workplaces: wps, Components: states}, nil)
			}
			if len(states) == 0 && len(wps) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "no platzwart releases in namespace %q\n", ns)
				return nil
			}
			if len(wps) > 0 {
				if err := printWorkplaces(cmd.OutOrStdout(), wps); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout())
			}
			return printStates(cmd.OutOrStdout(), out, states)
		},
	}
	cmd.Flags().StringVarP(&out.format, "output", "o", "table", "output format: "+validFormats)
	return cmd
}

// capabilityOrder sorts the status table the way the workplace is built.
func capabilityOrder(c string) int {
	for i, name := range []string{"postgres", "redis", "identity", "chat", "video", "files", "office"} {
		if name == c {
			return i
		}
	}
	return 99
}

func printStates(w io.Writer, out printer, states []release.State) error {
	sort.SliceStable(states, func(i, j int) bool {
		if states[i].Workplace != states[j].Workplace {
			return states[i].Workplace < states[j].Workplace
		}
		return capabilityOrder(states[i].Capability) < capabilityOrder(states[j].Capability)
	})
	return out.print(w, states, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "WORKPLACE\tCOMPONENT\tCAPABILITY\tCHART\tREV\tREADY\tAGE\tMESSAGE")
		for _, s := range states {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%v\t%s\t%s\n", s.Workplace, s.Component, s.Capability, s.Chart, s.Revision,
				s.Ready, age(s.Deployed), s.Message)
		}
	})
}

// age formats a time like kubectl's AGE column.
func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// connectNamespace connects and returns the namespace of -n or the kubeconfig context.
func connectNamespace(g *globalFlags) (*kube.Cluster, string, error) {
	c, err := connect(g)
	if err != nil {
		return nil, "", err
	}
	ns, err := namespaceOf(g)
	return c, ns, err
}

// renderAndConnect loads, plans and renders every workplace of the directory argument,
// and only then connects: invalid input never reaches the cluster.
func renderAndConnect(ctx context.Context, args []string, g *globalFlags) ([]rendered, *kube.Cluster, error) {
	repo, err := loadRepo(dirArg(args), g)
	if err != nil {
		return nil, nil, err
	}
	results, err := renderRepo(ctx, repo)
	if err != nil {
		return nil, nil, err
	}
	c, err := connect(g)
	return results, c, err
}

// namespaceOf returns -n, or the kubeconfig context's namespace.
func namespaceOf(g *globalFlags) (string, error) {
	if g.namespace != "" {
		return g.namespace, nil
	}
	ns, _, err := kube.Namespace(kube.Options{Kubeconfig: g.kubeconfig, Context: g.context})
	return ns, err
}

func newUninstallCommand(g *globalFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "uninstall workplace",
		Short: "Uninstall every release of a workplace; volumes and generated Secrets are kept",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := connectNamespace(g)
			if err != nil {
				return err
			}
			eng := release.New(c, release.Options{Progress: progressPrinter(cmd.ErrOrStderr())})
			states, err := eng.Status(cmd.Context(), ns, args[0])
			if err != nil {
				return err
			}
			if len(states) == 0 {
				return fmt.Errorf("workplace %s/%s has no releases", ns, args[0])
			}
			if !yes {
				fmt.Fprintf(cmd.ErrOrStderr(), "Uninstall %d releases of workplace %s/%s? Volumes and generated Secrets are kept. [y/N] ", len(states), ns, args[0])
				answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return fmt.Errorf("not confirmed; nothing was uninstalled")
				}
			}
			// The lock outlives Ctrl-C: the uninstall in progress finishes, no other starts.
			lock, err := eng.Lock(cmd.Context(), context.WithoutCancel(cmd.Context()), ns, args[0], release.Holder("platzwart-cli"))
			if err != nil {
				return err
			}
			defer func() { _ = lock.Unlock(cmd.Context()) }()
			done, err := eng.Uninstall(cmd.Context(), ns, args[0])
			fmt.Fprintf(cmd.OutOrStdout(), "uninstalled %d releases of workplace %s/%s; volumes and generated Secrets were kept\n", len(done), ns, args[0])
			return err
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}
