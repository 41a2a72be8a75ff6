package main

import (
	"bufio"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/restore"
)

func newRestoreCommand(g *globalFlags) *cobra.Command {
	var (
		workplace string
		timeout   time.Duration
		yes       bool
	)
	cmd := &cobra.Command{
		Use:   "restore BACKUP",
		Short: "Restore a database from a backup taken before a risky upgrade step",
		Long: `restore restores the dump of a backup (the Job name or dump file platzwart backups
lists) into the database it was taken from, with the PostgreSQL server chart's
restore.sh. Nothing is written unless the backup is complete and its release owns
its database.

It takes the workplace's lease, so neither apply nor the controller acts on the
workplace meanwhile; records the replicas of the Deployments and StatefulSets of
the release that owns the database (annotation platzwart.io/replicas-before-restore)
and scales them to 0; waits until their pods are gone; runs restore.sh in a Job,
which restores into a new database and swaps it in by renaming, keeping the old one
as <database>_before_<UTC time>; then brings the consumers back and releases the
lease. When the Job fails the database is as it was, and the consumers come back
too. A restore that ended early (killed, timed out) is finished by running the same
command again.`,
		Example: `  platzwart backups -n demo
  platzwart restore demo-keycloak-backup-keycloak-20261129t101500 -n demo`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := connectNamespace(g)
			if err != nil {
				return err
			}
			errOut := cmd.ErrOrStderr()
			opts := restore.Options{Namespace: ns, Workplace: workplace, Backup: args[0], Timeout: timeout,
				Holder: release.Holder("platzwart-cli"), Progress: progressPrinter(errOut)}
			p, err := restore.Prepare(cmd.Context(), c, opts)
			if err != nil {
				return err
			}
			b := p.Backup
			if !yes {
				stops := "nothing (the release has no Deployments or StatefulSets)"
				if len(p.Consumers) > 0 {
					var names []string
					for _, w := range p.Consumers {
						names = append(names, w.String())
					}
					stops = strings.Join(names, ", ")
				}
				fmt.Fprintf(errOut, "Restore database %s of release %s from %s in %s (backup Job %s, finished %s)?\n"+
					"Stops during the restore: %s.\nThe current database is kept as %s_before_<UTC time>. [y/N] ",
					b.Database, b.Release, b.File, location(b), b.Job, b.Finished.UTC().Format(time.RFC3339), stops, b.Database)
				answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return fmt.Errorf("not confirmed; nothing was changed")
				}
			}
			res, err := restore.Restore(cmd.Context(), c, opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "restored database %s/%s of release %s from %s (backup Job %s) with Job %s in %s\n",
				ns, b.Database, b.Release, b.File, b.Job, res.Job, res.Took.Round(100*time.Millisecond))
			fmt.Fprintf(out, "the previous database is kept as %s_before_<UTC time>, connections disabled (kubectl -n %s logs job/%s names it)\n", b.Database, ns, res.Job)
			for _, w := range res.Consumers {
				fmt.Fprintf(out, "back: %s\n", w)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&workplace, "workplace", "", "the workplace of the backup (default: whichever workplace of the namespace has it)")
	fl.DurationVar(&timeout, "timeout", 30*time.Minute, "how long to wait for each step: the consumers to stop, the restore Job, the consumers to be ready again")
	fl.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}
