package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
)

// rendered is the plan and manifests of one workplace.
type rendered struct {
	plan      *plan.Plan
	manifests []*render.Manifest
}

// renderRepo plans and renders every workplace of repo; on any error nothing is returned.
func renderRepo(ctx context.Context, repo *load.Repository) ([]rendered, error) {
	var out []rendered
	var errs []error
	for _, w := range repo.Workplaces {
		p, err := plan.Build(w, repo.Catalog)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ms, err := render.Plan(ctx, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", w.File, w.Label(), err))
			continue
		}
		out = append(out, rendered{plan: p, manifests: ms})
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return out, nil
}

func newRenderCommand(g *globalFlags) *cobra.Command {
	var outputDir string
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
			results, err := renderRepo(cmd.Context(), repo)
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
	return &cobra.Command{
		Use:   "validate [dir]",
		Short: "Check the workplaces in dir: documents, selection, wiring, values and charts render",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirArg(args)
			repo, err := loadRepo(dir, g)
			if err != nil {
				return err
			}
			results, err := renderRepo(cmd.Context(), repo)
			if err != nil {
				return err
			}
			for _, r := range results {
				fmt.Fprintf(cmd.OutOrStdout(), "workplace %s/%s is valid: %d releases, %d generated secrets\n",
					r.plan.Namespace, r.plan.Workplace, len(r.plan.Releases), len(r.plan.Secrets))
			}
			return nil
		},
	}
}
