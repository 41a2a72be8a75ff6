// Package release makes a cluster match a plan: one Helm release per component,
// installed, upgraded, left alone or uninstalled through the Helm v3 SDK in-process,
// in dependency order with independent releases in parallel, each waited for with
// kstatus until it is ready.
package release

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/postrender"
)

// Action is what happens to one release.
type Action string

// Actions.
const (
	ActionInstall   Action = "install"
	ActionUpgrade   Action = "upgrade"
	ActionUnchanged Action = "unchanged"
	ActionUninstall Action = "uninstall"
	// ActionConflict marks a release name taken by a release platzwart does not manage
	// for this workplace: it is never touched.
	ActionConflict Action = "conflict"
)

// Options tune the engine.
type Options struct {
	// Parallelism bounds how many releases are acted on at once (default 4).
	Parallelism int
	// PollInterval is how often readiness is polled (default 250ms).
	PollInterval time.Duration
	// Progress receives a line per step; nil discards.
	Progress func(Event)
	// LeaseDuration is the workplace Lease's duration (default 60s, at least 3s): a
	// holder that has not renewed it for that long is taken over.
	LeaseDuration time.Duration
	// SkipDriftDetection turns off the check of unchanged releases for resources
	// changed or deleted by hand (one server-side dry-run per resource).
	SkipDriftDetection bool
	// StatusReader, when set, serves readiness from watch caches: a wait polls it
	// instead of listing every kind from the API server per poll (see poller).
	StatusReader StatusReader
}

// Event is one step of one release, for progress output.
type Event struct {
	// Release is the release name.
	Release string
	// Step is what happens: install, upgrade, rollback, uninstall, wait, ready, failed, unchanged, recover, skipped.
	Step string
	// Elapsed is the time since the release's work started.
	Elapsed time.Duration
	// Message gives details.
	Message string
	// Path is set on the steps of an upgrade path ("path" events): which version
	// step and which phase of it is starting.
	Path *PathStep
}

// Engine applies plans to one cluster.
type Engine struct {
	cluster *kube.Cluster
	opts    Options
	// helm is what every Helm action on the cluster shares.
	helm *helmShared
	// leases remembers foreign workplace Leases as this process saw them, to judge
	// their expiry by the API server's view (see leaseObserver).
	leases *leaseObserver
}

// New returns an engine for the cluster.
func New(c *kube.Cluster, opts Options) *Engine {
	if opts.Parallelism <= 0 {
		opts.Parallelism = 4
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	if opts.LeaseDuration <= 0 {
		opts.LeaseDuration = DefaultLeaseDuration
	}
	opts.LeaseDuration = max(opts.LeaseDuration, 3*time.Second)
	return &Engine{cluster: c, opts: opts, helm: newHelmShared(c), leases: &leaseObserver{}}
}

// Step is the action decided for one release.
type Step struct {
	// Release is the release name.
	Release string `json:"release"`
	// Component it implements.
	Component string `json:"component"`
	// Action to take.
	Action Action `json:"action"`
	// Reason says why.
	Reason string `json:"reason"`
	// Revision is the current Helm revision (0 if not installed).
	Revision int `json:"revision,omitempty"`
	// Versions is the component version path an upgrade takes: the deployed version,
	// then every version it upgrades to in order (empty when the version stays).
	Versions []string `json:"versions,omitempty"`

	planned *plan.Release
	current *deployed
	// consumers are the releases depending on this one (for steps that stop them).
	consumers []consumer
	// unconfirmed is set when the current revision was never seen ready.
	unconfirmed bool
}

// Unconfirmed reports whether the step checks a revision that was never seen ready
// (and rolls it back when it is not).
func (s Step) Unconfirmed() bool { return s.unconfirmed }

// Installed reports whether the release has a revision in Helm's storage (deployed,
// failed or pending alike): its component may have initialised its data.
func (s Step) Installed() bool { return s.current != nil && s.current.latest != nil }

// CurrentManifest returns the manifest of the release's newest revision in Helm's
// storage ("" when it is not installed): what Helm's upgrade patches from.
func (s Step) CurrentManifest() string {
	if s.current == nil || s.current.latest == nil {
		return ""
	}
	return s.current.latest.Manifest
}

// CurrentHooks returns the hooks of the release's newest revision in Helm's storage
// (nil when it is not installed).
func (s Step) CurrentHooks() []*release.Hook {
	if s.current == nil || s.current.latest == nil {
		return nil
	}
	return s.current.latest.Hooks
}

// Planned returns the planned release of a step (nil for an uninstall).
func (s Step) Planned() *plan.Release { return s.planned }

// Decide compares the plan with Helm storage and returns one step per release, planned
// releases in plan order first, then uninstalls. It only reads.
func (e *Engine) Decide(_ context.Context, p *plan.Plan) ([]Step, error) {
	cfg, err := e.helmConfig(p.Namespace)
	if err != nil {
		return nil, err
	}
	current, err := listWorkplace(cfg, p.Workplace)
	if err != nil {
		return nil, err
	}
	var steps []Step
	planned := map[string]bool{}
	for _, rel := range p.Releases {
		planned[rel.Name] = true
		d := current[rel.Name]
		s := Step{Release: rel.Name, Component: rel.Component, planned: rel, current: d}
		switch {
		case d == nil:
			s.Action, s.Reason = ActionInstall, "not installed"
			if other, err := cfg.Releases.Last(rel.Name); err == nil && other != nil {
				s.Action = ActionConflict
				s.Reason = fmt.Sprintf("a release %q exists that platzwart does not manage for workplace %q (labels %v); it is left alone: remove or rename it",
					rel.Name, p.Workplace, other.Labels)
			}
		case isPending(d.latest):
			s.Action, s.Reason = ActionUpgrade, fmt.Sprintf("revision %d was left %s by an interrupted action", d.latest.Version, d.latest.Info.Status)
			if d.lastGood == nil {
				s.Action = ActionInstall
			}
		case d.latest.Info.Status != release.StatusDeployed:
			s.Action, s.Reason = ActionUpgrade, fmt.Sprintf("revision %d is %s", d.latest.Version, d.latest.Info.Status)
			if d.lastGood == nil {
				s.Action = ActionInstall
			}
		case d.latest.Labels[LabelDigest] != digestLabel(rel.Digest):
			s.Action, s.Reason = ActionUpgrade, "chart, values or patches changed"
		case d.latest.Labels[LabelReady] != "true":
			s.Action, s.Reason = ActionUnchanged, fmt.Sprintf("revision %d was never confirmed ready (an interrupted apply): checking it", d.latest.Version)
			s.unconfirmed = true
		default:
			s.Action, s.Reason = ActionUnchanged, "digest unchanged"
		}
		if d != nil {
			s.Revision = d.latest.Version
			if s.Action == ActionUpgrade || s.Action == ActionInstall {
				path, err := checkVersionStep(rel, d)
				if err != nil {
					return nil, err
				}
				if len(path) > 0 {
					s.Versions = append([]string{d.readyVersion()}, path...)
					s.Reason += "; versions " + strings.Join(s.Versions, " → ")
				}
			}
		}
		steps = append(steps, s)
	}
	for i := range steps {
		for _, other := range steps {
			if slices.Contains(other.planned.DependsOn, steps[i].Release) {
				steps[i].consumers = append(steps[i].consumers, consumer{release: other.Release, manifest: other.CurrentManifest()})
			}
		}
	}
	var gone []string
	for name := range current {
		if !planned[name] {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	for _, name := range gone {
		d := current[name]
		steps = append(steps, Step{Release: name, Component: d.latest.Labels[LabelComponent], Action: ActionUninstall,
			Reason: "component no longer selected", Revision: d.latest.Version, current: d})
	}
	return steps, nil
}

// Failure classifies why a release did not end as planned.
type Failure string

// Failures.
const (
	// FailureNone: the release ended as planned.
	FailureNone Failure = ""
	// FailureError: the action or the wait failed; nothing was remediated (a first
	// install that failed was removed).
	FailureError Failure = "Error"
	// FailureRolledBack: the upgrade failed and the release was rolled back.
	FailureRolledBack Failure = "RolledBack"
	// FailureInterrupted: the process was stopping or lost the workplace Lease; the
	// release was left as it was, unconfirmed, for the next reconcile to check. Not a
	// failure of the change.
	FailureInterrupted Failure = "Interrupted"
	// FailureLocked: another process holds the workplace Lease; nothing was done.
	FailureLocked Failure = "Locked"
)

// errInterrupted marks work stopped because the process is stopping or the Lease
// was lost; errRolledBack marks a failed upgrade that was rolled back.
var (
	errInterrupted = errors.New("interrupted")
	errRolledBack  = errors.New("rolled back")
)

// classify returns the Failure of an error of applyOne.
func classify(err error) Failure {
	var locked *LockedError
	switch {
	case err == nil:
		return FailureNone
	case errors.As(err, &locked):
		return FailureLocked
	case errors.Is(err, errInterrupted), errors.Is(err, ErrLeaseLost):
		return FailureInterrupted
	case errors.Is(err, errRolledBack):
		return FailureRolledBack
	}
	return FailureError
}

// Outcome is what happened to one release.
type Outcome struct {
	Step
	// Ready is true when every resource of the release is ready.
	Ready bool `json:"ready"`
	// Err is why it failed ("" on success).
	Err string `json:"error,omitempty"`
	// Failure classifies Err.
	Failure Failure `json:"failure,omitempty"`
	// Duration of the work on this release.
	Duration time.Duration `json:"duration"`
	// Revision after the action.
	NewRevision int `json:"newRevision,omitempty"`
	// Drifted lists resources found changed or deleted by hand, and corrected.
	Drifted []string `json:"drifted,omitempty"`
	// Backups are the databases dumped before risky upgrade steps.
	Backups []Backup `json:"backups,omitempty"`
	// Version is the component version the release runs after the action (catalog
	// spec.versions; "" for components without versions or when unknown): the
	// planned version on success, the last step reached when a path stopped.
	Version string `json:"version,omitempty"`
}

// versionAfter is the component version a release runs after applyOne ended with err.
func versionAfter(s Step, err error) string {
	var pe *PathError
	switch {
	case s.planned == nil:
		return ""
	case err == nil && s.Action != ActionUnchanged:
		return s.planned.Version
	case err == nil && s.current != nil && s.current.latest != nil && s.current.latest.Labels[LabelVersion] != "":
		// Unchanged, and ready: the revision it runs.
		return s.current.latest.Labels[LabelVersion]
	case errors.As(err, &pe):
		if pe.Step == 1 {
			return pe.From
		}
		return pe.Versions[pe.Step-2]
	case s.current != nil:
		return s.current.readyVersion()
	}
	return ""
}

// Result is the outcome of one Apply.
type Result struct {
	// Outcomes per release, in plan order, uninstalls last.
	Outcomes []Outcome `json:"outcomes"`
}

// Interrupted reports whether any release was left for the next reconcile because the
// process was stopping, the Lease was lost or held by another process.
func (r *Result) Interrupted() bool {
	for _, o := range r.Outcomes {
		if o.Failure == FailureInterrupted || o.Failure == FailureLocked {
			return true
		}
	}
	return false
}

// Locked returns the first outcome that found the workplace Lease held by another
// process, or nil.
func (r *Result) Locked() *Outcome {
	for i := range r.Outcomes {
		if r.Outcomes[i].Failure == FailureLocked {
			return &r.Outcomes[i]
		}
	}
	return nil
}

// Failed returns the outcomes that failed.
func (r *Result) Failed() []Outcome {
	var out []Outcome
	for _, o := range r.Outcomes {
		if o.Err != "" {
			out = append(out, o)
		}
	}
	return out
}

// Apply carries out steps (from Decide): releases in dependency order, a release only
// once those it depends on are ready, independent ones in parallel. Uninstalls come
// last and only when everything else is ready (make-before-break).
//
// ctx is the stop signal: once it is done no release starts and waits end, but a Helm
// action already running finishes (it runs under the guard's Lease context, which a
// stopping process keeps until its grace period ends), and nothing is rolled back or
// uninstalled because of the stop: the release is left unconfirmed and the next
// reconcile checks it. Every write takes the workplace Lease through g first.
func (e *Engine) Apply(ctx context.Context, p *plan.Plan, steps []Step, g *Guard) (*Result, error) {
	live := newLiveCache(e)
	// Each release gets its own Helm configuration (Helm's upgrade and rollback set
	// MaxHistory on its storage) on the parts every action on the cluster shares. A
	// release that stays unchanged and confirmed needs no Helm action and none.
	cfgFor := func() (*action.Configuration, error) { return e.actionConfig(p.Namespace) }
	byName := map[string]int{}
	for i, s := range steps {
		byName[s.Release] = i
	}
	outcomes := make([]Outcome, len(steps))
	done := make([]chan struct{}, len(steps))
	for i := range done {
		done[i] = make(chan struct{})
	}
	sem := make(chan struct{}, e.opts.Parallelism)
	var wg sync.WaitGroup
	for i, s := range steps {
		if s.Action == ActionUninstall {
			close(done[i])
			continue
		}
		wg.Add(1)
		go func(i int, s Step) {
			defer wg.Done()
			defer close(done[i])
			start := time.Now()
			out := Outcome{Step: s}
			defer func() {
				out.Duration = time.Since(start)
				outcomes[i] = out
			}()
			for _, dep := range s.planned.DependsOn {
				j, ok := byName[dep]
				if !ok {
					continue
				}
				select {
				case <-done[j]:
				case <-ctx.Done():
					out.Err, out.Failure = "not started: stopping", FailureInterrupted
					return
				}
				if !outcomes[j].Ready {
					out.Err = fmt.Sprintf("not started: %s is not ready", dep)
					e.progress(s.Release, "skipped", 0, out.Err)
					return
				}
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out.Err, out.Failure = "not started: stopping", FailureInterrupted
				return
			}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				out.Err, out.Failure = "not started: stopping", FailureInterrupted
				return
			}
			start = time.Now()
			var cfg *action.Configuration
			if s.Action != ActionUnchanged || s.unconfirmed {
				var err error
				if cfg, err = cfgFor(); err != nil {
					out.Err = err.Error()
					return
				}
			}
			if s.Action == ActionConflict {
				out.Err = s.Reason
				e.progress(s.Release, "failed", 0, out.Err)
				return
			}
			rev, ready, drifted, err := e.applyOne(ctx, cfg, live, g, s, start, &out.Backups)
			// Not on a release that stays as it is: a step marks its revision ready only
			// once its consumers are back, so a ready, unchanged release has none
			// stopped (and a no-op reconcile reads nothing more).
			if declaresStop(s.planned) && (s.Action != ActionUnchanged || s.unconfirmed) &&
				classify(err) != FailureInterrupted && classify(err) != FailureLocked {
				// Consumers a step stopped get their replicas back once the step is
				// over, succeeded or not, also when an earlier run stopped them and
				// was killed; an interrupted step leaves them stopped for the next
				// run to finish its migrations first.
				if serr := e.startConsumers(ctx, s, start); serr != nil {
					err = errors.Join(err, fmt.Errorf("starting the consumers of %s again: %w", s.Release, serr))
					ready = false
				}
			}
			out.NewRevision, out.Ready, out.Drifted = rev, ready, drifted
			out.Version = versionAfter(s, err)
			if err != nil {
				out.Err, out.Failure = err.Error(), classify(err)
				step := "failed"
				if out.Failure == FailureInterrupted || out.Failure == FailureLocked {
					step = "interrupted"
				}
				e.progress(s.Release, step, time.Since(start), out.Err)
			}
		}(i, s)
	}
	wg.Wait()
	failed := false
	for i, s := range steps {
		if s.Action != ActionUninstall && outcomes[i].Err != "" {
			failed = true
		}
	}
	for i, s := range steps {
		if s.Action != ActionUninstall {
			continue
		}
		out := Outcome{Step: s}
		if failed {
			out.Err, out.Failure = "kept running: another release of the workplace is not ready (make-before-break)", FailureError
			e.progress(s.Release, "skipped", 0, out.Err)
			outcomes[i] = out
			continue
		}
		if ctx.Err() != nil {
			out.Err, out.Failure = "not started: stopping", FailureInterrupted
			outcomes[i] = out
			continue
		}
		start := time.Now()
		cfg, err := cfgFor()
		if err == nil {
			_, err = g.Acquire(ctx)
		}
		if err == nil {
			err = e.uninstall(cfg, s, start)
		}
		out.Duration = time.Since(start)
		if err != nil {
			out.Err, out.Failure = err.Error(), classify(err)
			e.progress(s.Release, "failed", out.Duration, out.Err)
		} else {
			out.Ready = true
		}
		outcomes[i] = out
	}
	return &Result{Outcomes: outcomes}, nil
}

// stopped returns the reason work must not go on: the process is stopping (ctx) or
// the Lease was lost (wctx); nil otherwise.
func stopped(ctx, wctx context.Context) error {
	if err := context.Cause(wctx); err != nil {
		return fmt.Errorf("%w: %w", errInterrupted, err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: stopping", errInterrupted)
	}
	return nil
}

// waitContext is done when either the stop signal or the Lease context is.
func waitContext(ctx, wctx context.Context) (context.Context, context.CancelFunc) {
	wait, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(wctx, cancel)
	return wait, func() { stop(); cancel() }
}

// interrupted wraps err when the work was stopped: the release is left as it is for
// the next reconcile, never remediated because the process was stopping.
func interrupted(ctx, wctx context.Context, rel string, version int, err error) error {
	why := stopped(ctx, wctx)
	if why == nil {
		return nil
	}
	if version > 0 {
		return fmt.Errorf("%w; revision %d of %s is left unconfirmed for the next reconcile to check (%v)", why, version, rel, err)
	}
	return fmt.Errorf("%w; %s is left for the next reconcile (%v)", why, rel, err)
}

// applyOne installs, upgrades or checks one release and waits until it is ready. It
// reports whether the release ends up ready: a failed upgrade that was rolled back to
// a revision that is ready again returns an error and ready, so the releases that
// depend on it go on with the old revision. Every write takes the Lease through g and
// runs with its context; see Apply for what a stop does.
func (e *Engine) applyOne(ctx context.Context, cfg *action.Configuration, live *liveCache, g *Guard, s Step, start time.Time, backups *[]Backup) (int, bool, []string, error) {
	rel := s.planned
	if s.Action == ActionUnchanged && !s.unconfirmed {
		return e.check(ctx, live, g, s, start)
	}
	wctx, err := g.Acquire(ctx)
	if err != nil {
		return s.Revision, false, nil, err
	}
	if s.current != nil && isPending(s.current.latest) {
		e.progress(s.Release, "recover", time.Since(start), s.Reason)
		if err := unlock(cfg, s.current.latest); err != nil {
			return 0, false, nil, err
		}
	}
	wait, cancel := waitContext(ctx, wctx)
	defer cancel()
	post := &postrender.Kustomize{Patches: rel.Patches, Where: rel.PatchesOrigin, PodAnnotations: rel.PodAnnotations}
	switch s.Action {
	case ActionUnchanged:
		e.progress(s.Release, "unchanged", time.Since(start), "revision "+fmt.Sprint(s.Revision))
		return e.confirm(ctx, wctx, cfg, s, start)
	case ActionInstall:
		if s.current != nil {
			// A failed first install: remove its remains before trying again.
			e.progress(s.Release, "uninstall", time.Since(start), "removing failed first install")
			if err := e.helmUninstall(cfg, s.Release, rel.Timeout); err != nil {
				return 0, false, nil, err
			}
		}
		e.progress(s.Release, "install", time.Since(start), fmt.Sprintf("chart %s-%s", rel.ChartName, rel.ChartVersion))
		in := action.NewInstall(cfg)
		in.ReleaseName = rel.Name
		in.Namespace = rel.Namespace
		in.Timeout = rel.Timeout
		in.Labels = Labels(rel, false)
		in.PostRenderer = post
		// The Helm action runs under the Lease's context, not the stop signal: a
		// stopping process lets it finish instead of leaving it half-done.
		out, err := in.RunWithContext(wctx, rel.Chart.Helm(), rel.Values)
		version := 0
		if err == nil {
			version = out.Version
			e.progress(s.Release, "wait", time.Since(start), "")
			err = e.waitManifest(wait, out.Manifest, rel)
		}
		if err != nil {
			if ierr := interrupted(ctx, wctx, rel.Name, version, err); ierr != nil {
				return version, false, nil, ierr
			}
			// Remove only what this install created: a release carrying this workplace's
			// labels and this plan's digest.
			if last, lerr := cfg.Releases.Last(rel.Name); lerr == nil && last.Labels[LabelWorkplace] == rel.Workplace && last.Labels[LabelDigest] == digestLabel(rel.Digest) {
				e.progress(s.Release, "uninstall", time.Since(start), "first install failed; removing it so the next run starts clean")
				if uerr := e.helmUninstall(cfg, s.Release, rel.Timeout); uerr != nil {
					return 0, false, nil, fmt.Errorf("install: %w; removing the failed install: %v", err, uerr)
				}
			}
			return 0, false, nil, fmt.Errorf("install: %w", err)
		}
		e.progress(s.Release, "ready", time.Since(start), fmt.Sprintf("revision %d", out.Version))
		return out.Version, true, nil, markReady(cfg, rel.Name, out.Version)
	case ActionUpgrade:
		path, err := versionPath(s)
		if err != nil {
			return 0, false, nil, err
		}
		var good *release.Release
		deployed := ""
		if s.current != nil {
			good = s.current.rollbackTarget()
			deployed = s.current.readyVersion()
		}
		// Each version on the path is its own upgrade, ready before the next starts: a
		// backup first when the step is risky, then its pre-migrations, the Helm
		// upgrade, and its post-migrations once it is ready. A step that fails stops the
		// path: a failed upgrade or post-migration is rolled back to the step before
		// it, a failed pre-migration leaves that step running; the backups stay.
		revision := s.Revision
		for i, step := range path {
			why := s.Reason
			if len(path) > 1 {
				why = fmt.Sprintf("step %d of %d: version %s", i+1, len(path), step.Version)
			}
			// Migrations run only when the step changes the recorded version: not on
			// an upgrade that keeps it, and not from an unrecorded one (a release from
			// before versions were recorded may be past them already).
			migrating := step.Version != "" && deployed != "" && deployed != step.Version
			e.pathProgress(s, i, len(path), step.Version, "start", time.Since(start))
			if migrating && len(step.Migrations) > 0 {
				if err := claimWithS3(step, deployed); err != nil {
					return revision, good != nil, nil, pathError(s, path, i, err, *backups)
				}
				if err := e.failedMigration(wctx, step, deployed); err != nil {
					return revision, good != nil, nil, pathError(s, path, i, err, *backups)
				}
			}
			if migrating && stopsConsumers(step, deployed) {
				// Before the backup: the dump is then what the consumers wrote last.
				e.pathProgress(s, i, len(path), step.Version, "stop-consumers", time.Since(start))
				if err := e.stopConsumers(wctx, s, start); err != nil {
					if ierr := stopped(ctx, wctx); ierr != nil {
						return revision, false, nil, ierr
					}
					return revision, good != nil, nil, pathError(s, path, i, err, *backups)
				}
			}
			if backupNeeded(deployed, step) {
				// The step changes stored data in a way only a backup undoes: no backup,
				// no step. The release stays as it is.
				e.pathProgress(s, i, len(path), step.Version, "backup", time.Since(start))
				b, err := e.backupBefore(ctx, wctx, s, step, start)
				*backups = append(*backups, b...)
				if err != nil {
					if ierr := stopped(ctx, wctx); ierr != nil {
						return revision, false, nil, ierr
					}
					return revision, good != nil, nil, pathError(s, path, i, err, *backups)
				}
			}
			if migrating && hasPhase(step, deployed, catalog.PhasePre) {
				e.pathProgress(s, i, len(path), step.Version, "pre-migrations", time.Since(start))
				from := revision
				if good != nil {
					from = good.Version
				}
				if err := e.migrate(ctx, wctx, s, step, deployed, from, catalog.PhasePre, start); err != nil {
					if ierr := stopped(ctx, wctx); ierr != nil {
						return revision, false, nil, ierr
					}
					return revision, good != nil, nil, pathError(s, path, i, err, *backups)
				}
			}
			e.pathProgress(s, i, len(path), step.Version, "upgrade", time.Since(start))
			e.progress(s.Release, "upgrade", time.Since(start), why)
			post := migrating && hasPhase(step, deployed, catalog.PhasePost)
			stops := migrating && stopsConsumers(step, deployed)
			version, ready, drifted, err := e.upgrade(ctx, wctx, wait, cfg, s, step, good, start, post || stops)
			if err != nil {
				if errors.Is(err, errInterrupted) || errors.Is(err, ErrLeaseLost) {
					return version, ready, drifted, err
				}
				return version, ready, drifted, pathError(s, path, i, err, *backups)
			}
			if post {
				e.pathProgress(s, i, len(path), step.Version, "post-migrations", time.Since(start))
				if err := e.migrate(ctx, wctx, s, step, deployed, version, catalog.PhasePost, start); err != nil {
					if ierr := stopped(ctx, wctx); ierr != nil {
						return version, false, nil, ierr
					}
					if good == nil {
						return version, false, nil, pathError(s, path, i, err, *backups)
					}
					rv, rready, _, rerr := e.rollback(ctx, wctx, cfg, s, start, err, good)
					return rv, rready, nil, pathError(s, path, i, rerr, *backups)
				}
			}
			if post || stops {
				// The consumers come back before the revision is marked ready: a
				// process stopped in between leaves it unconfirmed, and the next run
				// (confirm) gives them back.
				if stops {
					if err := e.startConsumers(wctx, s, start); err != nil {
						return version, true, nil, pathError(s, path, i, fmt.Errorf("starting the consumers again: %w", err), *backups)
					}
				}
				if err := markReady(cfg, rel.Name, version); err != nil {
					return version, true, nil, err
				}
			}
			if i == len(path)-1 {
				return version, ready, drifted, nil
			}
			deployed, revision = step.Version, version
			if good, err = cfg.Releases.Get(rel.Name, version); err != nil {
				return version, true, nil, fmt.Errorf("release %s revision %d: %w", rel.Name, version, err)
			}
		}
	}
	return 0, false, nil, fmt.Errorf("unexpected action %q", s.Action)
}

// upgrade upgrades the release to rel (the planned release, or a step on its version
// path) and waits until it is ready; a failure is rolled back to good when there is
// one.
//
// The revision is marked ready unless post-migrations follow (confirmLater): then
// the caller marks it once they completed, so that a process stopped between the
// two leaves it unconfirmed and the next reconcile runs them (confirm).
func (e *Engine) upgrade(ctx, wctx, wait context.Context, cfg *action.Configuration, s Step, rel *plan.Release, good *release.Release, start time.Time, confirmLater bool) (int, bool, []string, error) {
	up := action.NewUpgrade(cfg)
	up.Namespace = rel.Namespace
	up.Timeout = rel.Timeout
	up.Labels = Labels(rel, true)
	up.PostRenderer = &postrender.Kustomize{Patches: rel.Patches, Where: rel.PatchesOrigin, PodAnnotations: rel.PodAnnotations}
	up.MaxHistory = 10
	out, err := up.RunWithContext(wctx, rel.Name, rel.Chart.Helm(), rel.Values)
	version := 0
	if err == nil {
		version = out.Version
		e.progress(s.Release, "wait", time.Since(start), "")
		err = e.waitManifest(wait, out.Manifest, rel)
	}
	if err != nil {
		if ierr := interrupted(ctx, wctx, rel.Name, version, err); ierr != nil {
			return version, false, nil, ierr
		}
		if good == nil {
			return 0, false, nil, fmt.Errorf("upgrade: %w", err)
		}
		return e.rollback(ctx, wctx, cfg, s, start, err, good)
	}
	e.progress(s.Release, "ready", time.Since(start), fmt.Sprintf("revision %d", out.Version))
	if confirmLater {
		return out.Version, true, nil, nil
	}
	return out.Version, true, nil, markReady(cfg, rel.Name, out.Version)
}

// versionPath returns the releases an upgrade applies in order: the version path from
// the deployed version (stepping stones, then the planned release), or only the
// planned release.
func versionPath(s Step) ([]*plan.Release, error) {
	rel := s.planned
	if rel.Version == "" || s.current == nil || s.current.version == "" {
		return []*plan.Release{rel}, nil
	}
	from := s.current.readyVersion()
	path, err := rel.Path(from)
	if err != nil {
		return nil, fmt.Errorf("release %s at version %s: %w", rel.Name, from, err)
	}
	if len(path) == 0 {
		return []*plan.Release{rel}, nil
	}
	return path, nil
}

// check looks at an unchanged release: resources changed or deleted by hand are
// corrected (under the Lease), then readiness is read.
func (e *Engine) check(ctx context.Context, live *liveCache, g *Guard, s Step, start time.Time) (int, bool, []string, error) {
	rel := s.planned
	e.progress(s.Release, "unchanged", time.Since(start), "revision "+fmt.Sprint(s.Revision))
	var what []string
	// One parse of the manifest for the drift check and the readiness check.
	_, objs, err := objects(s.current.latest.Manifest, rel.Namespace, e.cluster.Mapper)
	if err != nil {
		return s.Revision, false, nil, fmt.Errorf("release %s revision %d: manifest: %w", s.Release, s.Revision, err)
	}
	if !e.opts.SkipDriftDetection {
		drifted, w, err := e.detectDrift(ctx, live, objs)
		if err != nil {
			return s.Revision, false, nil, fmt.Errorf("drift detection: %w", err)
		}
		if len(drifted) > 0 {
			what = w
			e.progress(s.Release, "drift", time.Since(start), strings.Join(w, "; "))
			wctx, err := g.Acquire(ctx)
			if err != nil {
				return s.Revision, false, what, err
			}
			if err := e.correctDrift(wctx, drifted); err != nil {
				if ierr := stopped(ctx, wctx); ierr != nil {
					return s.Revision, false, what, ierr
				}
				return s.Revision, false, what, err
			}
		}
	}
	if len(what) == 0 && e.allCurrent(ctx, live, objs) {
		return s.Revision, true, nil, nil
	}
	if err := e.waitManifest(ctx, s.current.latest.Manifest, rel); err != nil {
		if ierr := stopped(ctx, context.Background()); ierr != nil {
			return s.Revision, false, what, ierr
		}
		return s.Revision, false, what, err
	}
	return s.Revision, true, what, nil
}

// rollback returns a release whose upgrade failed to its last good revision and
// waits until that is ready again.
func (e *Engine) rollback(ctx, wctx context.Context, cfg *action.Configuration, s Step, start time.Time, cause error, good *release.Release) (int, bool, []string, error) {
	rel := s.planned
	e.progress(s.Release, "rollback", time.Since(start), fmt.Sprintf("to revision %d: %v", good.Version, cause))
	rb := action.NewRollback(cfg)
	rb.Version = good.Version
	rb.Timeout = rel.Timeout
	rb.MaxHistory = 10
	if err := rb.Run(rel.Name); err != nil {
		return 0, false, nil, fmt.Errorf("upgrade: %w; rollback to revision %d: %v", cause, good.Version, err)
	}
	last, err := cfg.Releases.Last(rel.Name)
	if err != nil {
		return 0, false, nil, fmt.Errorf("upgrade: %w (%w to revision %d; reading it: %v)", cause, errRolledBack, good.Version, err)
	}
	wait, cancel := waitContext(ctx, wctx)
	defer cancel()
	if err := e.waitManifest(wait, last.Manifest, rel); err != nil {
		if ierr := interrupted(ctx, wctx, rel.Name, last.Version, err); ierr != nil {
			return last.Version, false, nil, ierr
		}
		return last.Version, false, nil, fmt.Errorf("upgrade: %w (%w to revision %d, which is not ready either: %v)", cause, errRolledBack, good.Version, err)
	}
	e.progress(s.Release, "ready", time.Since(start), fmt.Sprintf("revision %d (rolled back)", last.Version))
	if err := markReady(cfg, rel.Name, last.Version); err != nil {
		return last.Version, true, nil, fmt.Errorf("upgrade: %w (%w to revision %d; %v)", cause, errRolledBack, good.Version, err)
	}
	return last.Version, true, nil, fmt.Errorf("upgrade: %w (%w to revision %d)", cause, errRolledBack, good.Version)
}

// confirm checks a revision that was never seen ready (platzwart was stopped between
// Helm recording it and readiness): ready now, it is marked so; not ready, it is
// rolled back to the revision before it, as the interrupted apply would have done.
func (e *Engine) confirm(ctx, wctx context.Context, cfg *action.Configuration, s Step, start time.Time) (int, bool, []string, error) {
	e.progress(s.Release, "recover", time.Since(start), s.Reason)
	wait, cancel := waitContext(ctx, wctx)
	defer cancel()
	err := e.waitManifest(wait, s.current.latest.Manifest, s.planned)
	if err == nil {
		// A step of a version path stopped after its upgrade: its post-migrations
		// (each run once: a completed Job is not run again) come before it is ready.
		rel := s.planned
		if from := s.current.readyVersion(); rel.Version != "" && from != "" && from != rel.Version &&
			s.current.latest.Labels[LabelVersion] == rel.Version && hasPhase(rel, from, catalog.PhasePost) {
			err = e.migrate(ctx, wctx, s, rel, from, s.Revision, catalog.PhasePost, start)
			if err != nil {
				if ierr := stopped(ctx, wctx); ierr != nil {
					return s.Revision, false, nil, ierr
				}
				if prev := s.current.rollbackTarget(); prev != nil && prev.Version != s.Revision {
					return e.rollback(ctx, wctx, cfg, s, start, err, prev)
				}
				return s.Revision, false, nil, err
			}
		}
		if declaresStop(rel) {
			if err := e.startConsumers(wctx, s, start); err != nil {
				return s.Revision, true, nil, fmt.Errorf("starting the consumers of %s again: %w", s.Release, err)
			}
		}
		e.progress(s.Release, "ready", time.Since(start), fmt.Sprintf("revision %d", s.Revision))
		return s.Revision, true, nil, markReady(cfg, s.Release, s.Revision)
	}
	if ierr := interrupted(ctx, wctx, s.Release, s.Revision, err); ierr != nil {
		return s.Revision, false, nil, ierr
	}
	if s.current.previous == nil {
		return s.Revision, false, nil, err
	}
	return e.rollback(ctx, wctx, cfg, s, start, err, s.current.previous)
}

// WaitManifest waits until every resource of a release manifest is Current by
// kstatus, and on failure says which resources are not ready and what their pods
// report. It is the wait every release of a plan gets, for releases outside a plan
// (the controller's own chart).
func (e *Engine) WaitManifest(ctx context.Context, manifest, namespace string, timeout time.Duration) error {
	set, _, err := objects(manifest, namespace, e.cluster.Mapper)
	if err != nil {
		return fmt.Errorf("reading the manifest: %w", err)
	}
	return e.waitReady(ctx, set, namespace, timeout)
}

// waitManifest waits for every resource of a release manifest to be ready.
func (e *Engine) waitManifest(ctx context.Context, manifest string, rel *plan.Release) error {
	set, _, err := objects(manifest, rel.Namespace, e.cluster.Mapper)
	if err != nil {
		return fmt.Errorf("reading the manifest of %s: %w", rel.Name, err)
	}
	return e.waitReady(ctx, set, rel.Namespace, rel.Timeout)
}

// helmUninstall removes a release and its history.
func (e *Engine) helmUninstall(cfg *action.Configuration, name string, timeout time.Duration) error {
	un := action.NewUninstall(cfg)
	un.Timeout = timeout
	un.IgnoreNotFound = true
	if _, err := un.Run(name); err != nil {
		return fmt.Errorf("uninstall %s: %w", name, err)
	}
	return nil
}

// uninstall removes a release of a component that is no longer selected.
func (e *Engine) uninstall(cfg *action.Configuration, s Step, start time.Time) error {
	e.progress(s.Release, "uninstall", time.Since(start), s.Reason)
	if err := e.helmUninstall(cfg, s.Release, 5*time.Minute); err != nil {
		return err
	}
	e.progress(s.Release, "uninstalled", time.Since(start), "")
	return nil
}

// progress reports a step.
func (e *Engine) progress(rel, step string, elapsed time.Duration, msg string) {
	if e.opts.Progress != nil {
		e.opts.Progress(Event{Release: rel, Step: step, Elapsed: elapsed, Message: msg})
	}
}

// Uninstall removes every release of a workplace, apps first and the infrastructure
// they use last. Persistent volume claims stay (see postrender.KeepAnnotation).
func (e *Engine) Uninstall(ctx context.Context, namespace, workplace string) ([]string, error) {
	states, err := e.Status(ctx, namespace, workplace)
	if err != nil {
		return nil, err
	}
	rank := func(capability string) int {
		switch capability {
		case "postgres", "redis":
			return 2
		case "identity":
			return 1
		}
		return 0
	}
	sort.SliceStable(states, func(i, j int) bool { return rank(states[i].Capability) < rank(states[j].Capability) })
	cfg, err := e.actionConfig(namespace)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, st := range states {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		start := time.Now()
		e.progress(st.Release, "uninstall", 0, "")
		if err := e.helmUninstall(cfg, st.Release, 5*time.Minute); err != nil {
			return done, err
		}
		e.progress(st.Release, "uninstalled", time.Since(start), "")
		done = append(done, st.Release)
	}
	return done, nil
}

// Labels are the labels platzwart records with a revision of rel in Helm's
// storage. An upgrade drops LabelReady, which Helm would otherwise copy from the
// revision before ("null" deletes a label in Helm's merge).
func Labels(rel *plan.Release, upgrade bool) map[string]string {
	labels := map[string]string{LabelWorkplace: rel.Workplace, LabelComponent: rel.Component, LabelCapability: rel.Capability, LabelDigest: digestLabel(rel.Digest)}
	if rel.Version != "" {
		labels[LabelVersion] = rel.Version
	} else if upgrade {
		labels[LabelVersion] = "null"
	}
	if upgrade {
		labels[LabelReady] = "null"
	}
	return labels
}

// checkVersionStep returns the versions an installed release's upgrade goes through
// (nil when its version stays) and refuses to change it to another component version
// unless a path leads there (rel.Path): a downgrade, a target no path reaches
// and a pin skipping a mandatory version are refused before anything is written; the
// upgrade then takes the path's steps one by one (versionPath). A release whose
// deployed version was never recorded may only follow the newest version.
func checkVersionStep(rel *plan.Release, d *deployed) ([]string, error) {
	if rel.Version == "" {
		return nil, nil
	}
	if d.version == "" {
		if rel.Pinned() {
			return nil, fmt.Errorf("%s: release %s runs a version platzwart did not record (installed before versions were recorded): it can only follow the newest version %s until an upgrade records one; remove the pin %s",
				rel.VersionOrigin, rel.Name, rel.NewestVersion(), rel.Version)
		}
		return nil, nil
	}
	// Below the highest version any revision recorded is a downgrade, even when that
	// revision failed: its start may have migrated the data already.
	if _, err := rel.Path(d.version); err != nil {
		return nil, fmt.Errorf("release %s at version %s: %w", rel.Name, d.version, err)
	}
	// The path starts at the version last seen ready: a stepping stone whose step
	// failed or was interrupted is taken again, never skipped.
	from := d.readyVersion()
	steps, err := rel.Path(from)
	if err != nil {
		return nil, fmt.Errorf("release %s at version %s: %w", rel.Name, from, err)
	}
	var out []string
	for _, st := range steps {
		out = append(out, st.Version)
	}
	return out, nil
}
