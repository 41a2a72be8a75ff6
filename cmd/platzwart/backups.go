package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/platzwart/platzwart/reconciler/restore"
)

func newBackupsCommand(g *globalFlags) *cobra.Command {
	var (
		out       printer
		workplace string
	)
	cmd := &cobra.Command{
		Use:   "backups",
		Short: "List the database backups taken before risky upgrade steps",
		Long: `backups lists the backup Jobs platzwart ran before risky upgrade steps in a namespace
(-n, default the kubeconfig context's): one per database, with the release that owns
it, the version the step upgraded to, the dump file and where it is kept (pvc/<claim>:
the workplace's backup claim, or s3://<bucket>/<key> with the profile's
spec.backups.s3) and, when the pod reported it, the dump's size. Failed and running backup Jobs are
listed with their state. Restore one with platzwart restore JOB.`,
		Example: `  platzwart backups -n demo
  platzwart backups -n demo --workplace demo -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ns, err := connectNamespace(g)
			if err != nil {
				return err
			}
			list, err := restore.List(cmd.Context(), c.Clientset, ns, workplace)
			if err != nil {
				return err
			}
			if len(list) == 0 && (out.format == "" || out.format == "table") {
				fmt.Fprintf(cmd.ErrOrStderr(), "no backups in namespace %q\n", ns)
				return nil
			}
			return out.print(cmd.OutOrStdout(), list, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "JOB\tWORKPLACE\tRELEASE\tDATABASE\tVERSION\tSTATE\tFILE\tLOCATION\tSIZE\tAGE\tMESSAGE")
				for _, b := range list {
					size := "-"
					if b.Record != nil {
						size = byteSize(b.Record.Bytes)
					}
					finished := "-"
					if !b.Finished.IsZero() {
						finished = age(b.Finished)
					}
					version := b.Version
					if version == "" {
						version = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Job, b.Workplace, b.Release, b.Database,
						version, b.State, b.File, location(b), size, finished, b.Message)
				}
			})
		},
	}
	cmd.Flags().StringVar(&workplace, "workplace", "", "only the backups of this workplace")
	cmd.Flags().StringVarP(&out.format, "output", "o", "table", "output format: "+validFormats)
	return cmd
}

// location is where a backup's dump is kept, as one word: pvc/<claim> or the
// object's s3://<bucket>/<key>.
func location(b restore.Backup) string {
	if o := b.Location.S3; o != nil {
		return o.String()
	}
	return "pvc/" + b.Claim
}

// byteSize formats a size in binary units, like "12.5 MiB".
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
