package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

func newRotateCommand(g *globalFlags) *cobra.Command {
	var (
		component, secret, reason string
		force                     bool
		parallelism               int
		grace, lockTimeout        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "rotate [dir] --component NAME [--secret NAME]",
		Short: "Regenerate a component's generated Secrets (or one of them) and roll the change out",
		Long: `rotate replaces the values of the Secrets platzwart generated for a component of each
Workplace in dir (default .) with new random values (a new certificate for a TLS
Secret), or only the one named by --secret, and then applies the workplace like apply
does: every release referencing a rotated Secret gets a new digest, so the provider
that provisions it runs its provisioning again (the PostgreSQL hook Job sets the new
database password, Keycloak's configuration hook the new client secret) before its
consumers' pods roll with the new value.

The Secret keeps what it was rotated for and when in the annotations
platzwart.io/rotation-reason and platzwart.io/rotated-at, and an Event
(reason SecretRotated) says which keys were rotated and why. Values are never printed.
Secrets made by hand are refused: rotate them where they are made.

By default only what platzwart provisions again on every upgrade is rotated: the
component's database passwords and its OIDC client secret. A component's own Secrets
(an admin password, a signing key) may be read by the component only when it first
initialises (Keycloak's bootstrap admin, PostgreSQL's superuser set by initdb), so a
new value could lock it out: they are refused unless --force.`,
		Example: `  platzwart rotate examples/workplace --component keycloak --secret demo-keycloak-db-keycloak
  platzwart rotate examples/workplace --component jitsi --reason "annual rotation"`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if component == "" {
				return fmt.Errorf("--component is required")
			}
			results, c, err := renderAndConnect(cmd.Context(), args, g)
			if err != nil {
				return err
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			rec := reconciler.New(c, release.Options{Parallelism: parallelism, Progress: progressPrinter(errOut)}, release.Holder("platzwart-cli"))
			rec.Grace = grace
			sec := &secrets.Manager{Client: c.Clientset}
			var selectErrs []string
			done := 0
			failed := 0
			for _, r := range results {
				p := r.plan
				which, err := secrets.Select(p, component, secret, force)
				if err != nil {
					selectErrs = append(selectErrs, err.Error())
					continue
				}
				// Whatever would stop the roll-out stops the rotation first.
				if err := rec.Check(cmd.Context(), p); err != nil {
					return fmt.Errorf("nothing rotated: %w", err)
				}
				rotated, err := sec.Rotate(cmd.Context(), p, which, reason)
				for _, rot := range rotated {
					fmt.Fprintf(out, "rotated secret %s/%s (component %s, keys %s): %s\n", p.Namespace, rot.Secret, rot.Component, strings.Join(rot.Keys, ", "), rot.Reason)
				}
				if err != nil {
					return fmt.Errorf("workplace %s/%s: %w", p.Namespace, p.Workplace, err)
				}
				done++
				fmt.Fprintf(errOut, "applying workplace %s/%s to roll out the rotation\n", p.Namespace, p.Workplace)
				start := time.Now()
				rep, err := reconcileWaitingForLock(cmd.Context(), errOut, rec, p, lockTimeout)
				if err != nil {
					return err
				}
				printSummary(out, p, rep, time.Since(start))
				if rep.Failed() {
					failed++
				}
			}
			if done == 0 {
				return fmt.Errorf("nothing rotated: %s", strings.Join(selectErrs, "; "))
			}
			if failed > 0 {
				return fmt.Errorf("%d workplace(s) not ready after the rotation; see the summary above", failed)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&component, "component", "", "component whose generated Secrets are rotated (required)")
	fl.StringVar(&secret, "secret", "", "rotate only this Secret of the component")
	fl.BoolVar(&force, "force", false, "also rotate a component's own Secrets (admin passwords, keys), which the component may take up only when it first starts: they can lock it out")
	fl.StringVar(&reason, "reason", "rotated on request (platzwart rotate)", "why: recorded on the Secret and in its Event")
	fl.IntVar(&parallelism, "parallelism", 4, "releases acted on at once")
	fl.DurationVar(&grace, "grace", 2*time.Minute, "after Ctrl-C or SIGTERM, how long Helm actions in progress may finish")
	fl.DurationVar(&lockTimeout, "lock-timeout", 2*time.Minute, "how long to wait for another process's workplace lease (0: do not wait)")
	return cmd
}
