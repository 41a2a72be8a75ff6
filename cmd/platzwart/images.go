package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/platzwart/platzwart/reconciler/images"
	"github.com/platzwart/platzwart/reconciler/render"
)

func newImagesCommand(g *globalFlags) *cobra.Command {
	var (
		format   string
		upgrades bool
		gf       guardFlags
	)
	cmd := &cobra.Command{
		Use:   "images [dir]",
		Short: "List every container image the workplaces in dir run, for mirroring (skopeo, crane)",
		Long: `images renders every Workplace in dir (default .) offline, as platzwart render does, and
lists the image of every container, init container and ephemeral container of every
pod template in the manifests and hooks: after the registry rewrite of
spec.images.registry, fully qualified, with the digest where one is pinned.

With --upgrade-paths (the default) it adds what an upgrade path may run: the images of
every older version the components list (stepping stones) and of their migration
Jobs, marked with the version in -o json.

-o txt prints one reference per line, sorted and unique: input for a mirroring tool.`,
		Example: `  platzwart images examples/workplace
  platzwart images -o txt examples/workplace | xargs -I{} crane copy {} registry.example.org/mirror/...`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := loadRepo(dirArg(args), g)
			if err != nil {
				return err
			}
			ws, err := render.Repository(cmd.Context(), repo, gf.options())
			if err != nil {
				return err
			}
			list, err := images.List(ws)
			if upgrades {
				list, err = images.WithUpgradePaths(cmd.Context(), ws)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == "txt" {
				for _, img := range list {
					fmt.Fprintln(out, img.Reference)
				}
				return nil
			}
			if format != "table" && format != "json" {
				return fmt.Errorf("unknown output format %q (known: table|json|txt)", format)
			}
			return (printer{format: format}).print(out, list, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "IMAGE\tPINNED\tCOMPONENTS\tCONTAINERS")
				for _, img := range list {
					pinned := "no"
					if img.Pinned() {
						pinned = "digest"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", img.Reference, pinned, strings.Join(img.Components(), ","), len(img.Uses))
				}
			})
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "table", "output format: table|json|txt")
	cmd.Flags().BoolVar(&upgrades, "upgrade-paths", true, "also list the images of the older versions the components list and of their migration Jobs (what an upgrade path may run)")
	gf.register(cmd)
	return cmd
}
