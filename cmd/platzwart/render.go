package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/platzwart/platzwart/reconciler/guard"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
)

// rendered is the plan and manifests of one workplace.
type rendered struct {
	plan      *plan.Plan
	manifests []*render.Manifest
}

// renderRepo plans, renders and checks every workplace of repo with the default
// guardrail options; on any error nothing is returned.
func renderRepo(ctx context.Context, repo *load.Repository) ([]rendered, error) {
	return renderRepoWith(ctx, repo, render.Options{})
}

// renderRepoWith is renderRepo with guardrail options.
func renderRepoWith(ctx context.Context, repo *load.Repository, opts render.Options) ([]rendered, error) {
	ws, err := render.Repository(ctx, repo, opts)
	if err != nil {
		return nil, err
	}
	out := make([]rendered, 0, len(ws))
	for _, w := range ws {
		out = append(out, rendered{plan: w.Plan, manifests: w.Manifests})
	}
	return out, nil
}

// guardFlags are the tenancy options of validate and render.
type guardFlags struct {
	denyNamespaces     []string
	allowClusterScoped bool
}

func (f *guardFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.denyNamespaces, "deny-namespace", nil,
		"a namespace (or pattern like kube-*) no Workplace may use; repeat it; replaces the default list kube-*, default")
	cmd.Flags().BoolVar(&f.allowClusterScoped, "allow-cluster-scoped", false,
		"allow the cluster-scoped kinds components declare (component.yaml spec.clusterScoped)")
}

func (f *guardFlags) options() render.Options {
	return render.Options{Guard: guard.Options{DenyNamespaces: f.denyNamespaces, AllowClusterScoped: f.allowClusterScoped}}
}

func newRenderCommand(g *globalFlags) *cobra.Command {
	var outputDir string
	var gf guardFlags
	cmd := &cobra.Command{
		Use:   "render [dir]",
		Short: "Render every release of the workplaces in dir to Kubernetes manifests, without a cluster",
		Long: `render plans every Workplace in dir (default .) and renders its releases with the Helm
SDK in client-only mode, kustomize patches applied. Manifests go to stdout, or one
file per release to --output-dir. Nothing is written unless everything renders.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := loadRepo(dirArg(args), g)
			if err != nil {
				return err
			}
			results, err := renderRepoWith(cmd.Context(), repo, gf.options())
			if err != nil {
				return err
			}
			if outputDir != "" {
				return writeDir(outputDir, results, cmd.ErrOrStderr())
			}
			var buf bytes.Buffer
			for _, r := range results {
				for _, m := range r.manifests {
					writeHeader(&buf, r.plan, m)
					buf.Write(m.Bytes())
				}
			}
			_, err = cmd.OutOrStdout().Write(buf.Bytes())
			return err
		},
	}
	cmd.Flags().StringVar(&outputDir, "output-dir", "", "write <workplace>/<NN>-<release>.yaml files here instead of stdout")
	gf.register(cmd)
	return cmd
}

// writeHeader writes the comment that introduces a release in the stream.
func writeHeader(w io.Writer, p *plan.Plan, m *render.Manifest) {
	for _, rel := range p.Releases {
		if rel.Name == m.Release {
			fmt.Fprintf(w, "---\n# platzwart: workplace %s/%s, release %s, component %s (%s), chart %s-%s, digest %s\n",
				p.Namespace, p.Workplace, rel.Name, rel.Component, rel.Capability, rel.ChartName, rel.ChartVersion, rel.Digest)
		}
	}
}

// writeDir writes one file per release, numbered in install order.
func writeDir(dir string, results []rendered, progress io.Writer) error {
	for _, r := range results {
		wdir := filepath.Join(dir, r.plan.Workplace)
		if err := os.MkdirAll(wdir, 0o755); err != nil {
			return err
		}
		for i, m := range r.manifests {
			var buf bytes.Buffer
			writeHeader(&buf, r.plan, m)
			buf.Write(m.Bytes())
			file := filepath.Join(wdir, fmt.Sprintf("%02d-%s.yaml", i+1, m.Release))
			if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(progress, "wrote %s\n", file)
		}
	}
	return nil
}

func newValidateCommand(g *globalFlags) *cobra.Command {
	var gf guardFlags
	var strict bool
	cmd := &cobra.Command{
		Use:   "validate [dir]",
		Short: "Check the workplaces in dir: documents, selection, wiring, values and charts render",
		Long: `validate does every check that needs no cluster: documents and fields, selection and
wiring, charts render, every object stays in its workplace's namespace, hosts are unique,
releases fit Helm's storage. It warns about values that look like credential literals
(--strict refuses them).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirArg(args)
			repo, err := loadRepo(dir, g)
			if err != nil {
				return err
			}
			var credErrs []error
			for _, w := range repo.Workplaces {
				if w.Spec.StrictCredentials {
					continue // the plan refuses them, naming each
				}
				for _, cw := range guard.WorkplaceCredentials(w, repo.Catalog) {
					if strict {
						credErrs = append(credErrs, cw)
						continue
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", cw)
				}
			}
			results, err := renderRepoWith(cmd.Context(), repo, gf.options())
			if err := joinErrors(append(credErrs, err)); err != nil {
				return err
			}
			for _, r := range results {
				largest := &render.Manifest{}
				for _, m := range r.manifests {
					if m.StoredSize > largest.StoredSize {
						largest = m
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "workplace %s/%s is valid: %d releases, %d generated secrets; largest release in Helm's storage: %s, %d of %d KiB\n",
					r.plan.Namespace, r.plan.Workplace, len(r.plan.Releases), len(r.plan.Secrets), largest.Release, largest.StoredSize>>10, render.ReleaseSizeLimit>>10)
			}
			return nil
		},
	}
	gf.register(cmd)
	cmd.Flags().BoolVar(&strict, "strict", false, "refuse values that look like credential literals instead of warning")
	return cmd
}
