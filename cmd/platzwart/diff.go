package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/diff"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/render"
	"github.com/platzwart/platzwart/reconciler/source"
)

// Exit statuses of `platzwart diff`, like `git diff --exit-code`.
const (
	exitChanges = 1 // with --exit-code: something would change
	exitFailed  = 2 // the diff could not be computed
)

// exitError ends the process with code; with a nil err nothing is printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitCode is the process exit status for an error returned by a command: 1 unless
// the command chose another.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

// silent reports whether err only carries an exit status (nothing to print).
func silent(err error) bool {
	var e *exitError
	return errors.As(err, &e) && e.err == nil
}

// failed marks an error of `platzwart diff` with exit status 2.
func failed(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: exitFailed, err: err}
}

func newDiffCommand(g *globalFlags) *cobra.Command {
	var (
		from, to, color, format string
		exitOnChange, full      bool
		gf                      guardFlags
	)
	cmd := &cobra.Command{
		Use:   "diff [dir]",
		Short: "Show what a change does, as manifests per release: against the cluster, or between two Git revisions",
		Long: `diff shows, per release of every Workplace in dir (default .), what would change, as a
unified diff of the objects. Secret values and anything that looks like a credential
are masked; a changed one shows as "*** (changed)", never its value.

Without --from it compares with the cluster (--kubeconfig, --context, -n): each object
the release engine would write is sent as a server-side dry run of Helm's upgrade
patch and compared with the live object, so changes made by hand (drift) show too;
objects that leave a release, and releases of swapped-out components, are removals.
It writes nothing.

With --from REV [--to REV] it needs no cluster and no credentials: dir must be in a
Git repository; both revisions (--to defaults to the files in dir) are rendered
offline, as platzwart render does, and compared release by release.

Headers: install, upgrade, uninstall, unchanged (one line each), drift (unchanged
chart and values, live objects differ) and conflict. Added and removed objects are one
line each unless --full. An upgrade that changes a component's version shows its path,
stepping stones included ("upgrade (versions 33.0.7 → 34.0.4)"; "versions" in -o
json): from the version recorded in the cluster, or from the --from revision's; a path
platzwart refuses (a downgrade, a skipped stepping stone) is an error.

Exit status: 0 when the diff was computed; with --exit-code 1 when anything would
change and 0 when nothing would; 2 when the diff could not be computed (invalid
input, Git or cluster errors), with or without --exit-code.`,
		Example: `  platzwart diff examples/workplace
  platzwart diff --from origin/main --to HEAD --exit-code .
  platzwart diff --from HEAD~1 -o json .`,
		Args: func(cmd *cobra.Command, args []string) error {
			return failed(cobra.MaximumNArgs(1)(cmd, args))
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := runDiff(cmd.Context(), dirArg(args), from, to, g, gf.options())
			if err != nil {
				return failed(err)
			}
			out := cmd.OutOrStdout()
			switch format {
			case "", "text":
				useColor, err := colorFor(color, out)
				if err != nil {
					return failed(err)
				}
				if err := rep.WriteText(out, diff.TextOptions{Color: useColor, Full: full}); err != nil {
					return failed(err)
				}
			case "json", "yaml":
				if err := (printer{format: format}).print(out, rep, nil); err != nil {
					return failed(err)
				}
			default:
				return failed(fmt.Errorf("unknown output format %q (known: text|json|yaml)", format))
			}
			if exitOnChange && rep.Changed() {
				return &exitError{code: exitChanges}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return failed(err) })
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "Git revision to compare from (commit, branch, tag, HEAD~1); no cluster is used")
	f.StringVar(&to, "to", "", "Git revision to compare to (default: the files in dir); needs --from")
	f.StringVarP(&format, "output", "o", "text", "output format: text|json|yaml")
	f.StringVar(&color, "color", "auto", "colour the text output: auto (when stdout is a terminal and NO_COLOR is unset), always, never")
	f.BoolVar(&exitOnChange, "exit-code", false, "exit with status 1 when anything would change, 0 when nothing would (errors exit 2)")
	f.BoolVar(&full, "full", false, "print the whole content of added and removed objects, not one line each")
	gf.register(cmd)
	return cmd
}

// runDiff computes the report: between two revisions when from is set, else against
// the cluster.
func runDiff(ctx context.Context, dir, from, to string, g *globalFlags, opts render.Options) (*diff.Report, error) {
	if from == "" {
		if to != "" {
			return nil, errors.New("--to needs --from (without both, diff compares with the cluster)")
		}
		repo, err := loadRepo(dir, g)
		if err != nil {
			return nil, err
		}
		// Everything that needs no cluster is checked before connecting.
		ws, err := render.Repository(ctx, repo, opts)
		if err != nil {
			return nil, err
		}
		c, err := connect(g)
		if err != nil {
			return nil, err
		}
		return diff.Cluster(ctx, c, ws, opts)
	}
	before, fromLabel, err := renderRevision(ctx, dir, from, g, opts)
	if err != nil {
		return nil, err
	}
	var after []*render.Workplace
	toLabel := dir
	if to == "" {
		repo, err := loadRepo(dir, g)
		if err != nil {
			return nil, err
		}
		if after, err = render.Repository(ctx, repo, opts); err != nil {
			return nil, err
		}
	} else if after, toLabel, err = renderRevision(ctx, dir, to, g, opts); err != nil {
		return nil, err
	}
	return diff.Revisions(before, after, fromLabel, toLabel)
}

// renderRevision loads and renders the repository at dir as it is in revision rev,
// and returns it with a label naming the revision ("<rev>@<short commit>").
func renderRevision(ctx context.Context, dir, rev string, g *globalFlags, opts render.Options) ([]*render.Workplace, string, error) {
	r, err := source.ReadRevision(dir, rev)
	if err != nil {
		return nil, "", err
	}
	short := r.Commit[:12]
	label := short
	if !strings.HasPrefix(r.Commit, rev) {
		label = rev + "@" + short
	}
	// Files are named <short commit>/<path in dir> in messages (dir@<commit>/... below a folder).
	where := short
	if filepath.Clean(dir) != "." {
		where = filepath.Clean(dir) + "@" + short
	}
	repo, err := load.FS(r.FS, where, platzwart.Builtin(), g.namespace)
	if err != nil {
		return nil, "", err
	}
	ws, err := render.Repository(ctx, repo, opts)
	if err != nil {
		return nil, "", err
	}
	return ws, label, nil
}

// colorFor decides whether text output gets colours.
func colorFor(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto", "":
		if _, set := os.LookupEnv("NO_COLOR"); set {
			return false, nil
		}
		f, ok := w.(*os.File)
		return ok && term.IsTerminal(int(f.Fd())), nil
	}
	return false, fmt.Errorf("--color %q: want auto, always or never", mode)
}
