package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
)

// globalFlags are the kubectl-style flags every command accepts.
type globalFlags struct {
	kubeconfig string
	context    string
	namespace  string
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "platzwart",
		Short: "Keep a self-hosted workplace (identity, chat, video, files, office) in the state Git declares",
		Long: `platzwart turns Workplace documents into Helm releases: it picks one component per
capability (identity, chat, video, files, office, postgres, redis) from a profile,
wires them together (single sign-on, databases, URLs) and installs them in
dependency order.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	pf.StringVar(&g.context, "context", "", "kubeconfig context to use")
	pf.StringVarP(&g.namespace, "namespace", "n", "", "namespace of Workplaces without metadata.namespace (default: the Workplace's name)")
	root.AddCommand(
		newRenderCommand(g),
		newValidateCommand(g),
		newPlanCommand(g),
		newDiffCommand(g),
		newApplyCommand(g),
		newRotateCommand(g),
		newBackupsCommand(g),
		newRestoreCommand(g),
		newStatusCommand(g),
		newCheckCommand(g),
		newDNSCommand(g),
		newUninstallCommand(g),
		newControllerCommand(g),
		newInstallCommand(g),
		newImagesCommand(g),
		newCatalogCommand(),
		newVersionCommand(),
	)
	return root
}

// loadRepo loads the workplace repository at dir over the built-in catalog.
func loadRepo(dir string, g *globalFlags) (*load.Repository, error) {
	return load.Dir(dir, platzwart.Builtin(), g.namespace)
}

// dirArg returns the directory argument, "." when none is given.
func dirArg(args []string) string {
	if len(args) == 0 {
		return "."
	}
	return args[0]
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of platzwart and of the Helm SDK it embeds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "platzwart %s (Helm SDK %s, %s)\n", version, helmVersion(), goVersion())
			return err
		},
	}
}
