package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/source"
	"github.com/platzwart/platzwart/reconciler/webhook"
)

// Labels and annotations the controller sets on the Workplaces it applies from Git.
const (
	// LabelSource names the controller install whose Git source declares a Workplace.
	LabelSource = "platzwart.io/source"
	// AnnotationRevision is the source revision the Workplace document was read from.
	AnnotationRevision = "platzwart.io/revision"
	// AnnotationCommitTime is the commit time of that revision (RFC 3339).
	AnnotationCommitTime = "platzwart.io/commit-time"
	// AnnotationFile is the file of the repository holding the document.
	AnnotationFile = "platzwart.io/file"
	// ConditionSourceReady says whether the Git source could be fetched and verified.
	ConditionSourceReady = "SourceReady"
	// fieldOwner is the server-side apply field manager of the controller.
	fieldOwner = "platzwart-controller"
)

// loadedRevisions bounds how many loaded revisions the source state keeps, so that
// Workplaces still annotated with an older revision are planned with exactly the
// catalog of that revision while the source loop moves them on.
const loadedRevisions = 4

// sourceState is what the source loop last learned, shared with the Workplace
// reconciler.
type sourceState struct {
	mu sync.RWMutex
	// revision is the newest revision fetched (good or bad).
	revision string
	// repos are the repositories loaded at the newest good revisions, newest last.
	repos []loadedRepo
	// loadErr is why the newest revision could not be loaded (nil when it could).
	loadErr error
	// fetchErr is why the last fetch failed (nil when it worked).
	fetchErr error
}

// loadedRepo is a repository loaded at one revision.
type loadedRepo struct {
	revision string
	repo     *load.Repository
}

// at returns the repository loaded at revision (nil when it is not loaded), the
// newest good repository, and the load error when revision is the newest fetched and
// could not be loaded.
func (s *sourceState) at(revision string) (repo, newest *load.Repository, loadErr error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range s.repos {
		if r.revision == revision {
			repo = r.repo
		}
	}
	if s.revision == revision {
		loadErr = s.loadErr
	}
	if n := len(s.repos); n > 0 {
		newest = s.repos[n-1].repo
	}
	return repo, newest, loadErr
}

// sourceLoop fetches the Git source on an interval and on webhook triggers, and
// applies its Workplace documents as Workplace resources. It runs on the leader only.
type sourceLoop struct {
	opts   Options
	client client.Client
	// reader reads Workplaces uncached, for status writes with optimistic locking.
	reader  client.Reader
	kube    *kube.Cluster
	state   *sourceState
	trigger <-chan webhook.Event
	// wake asks the Workplace reconciler to reconcile every Workplace of the source
	// (after a revision was published): applying an unchanged Workplace document,
	// as after a restart, changes nothing and so wakes nothing by itself.
	wake func(ctx context.Context)
	log  logr.Logger
	last string

	// metrics counts and times the fetches; nil counts nothing.
	metrics *source.Metrics
}

// NeedLeaderElection is true: only the leader fetches and applies.
func (l *sourceLoop) NeedLeaderElection() bool { return true }

// Start runs the loop until ctx is done.
func (l *sourceLoop) Start(ctx context.Context) error {
	t := time.NewTicker(l.opts.Interval)
	defer t.Stop()
	l.sync(ctx, "start")
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			l.sync(ctx, "poll")
		case ev := <-l.trigger:
			l.log.Info("webhook push", "provider", ev.Provider, "ref", ev.Ref, "commit", ev.Commit, "latency", time.Since(ev.Received).String())
			l.sync(ctx, "webhook")
		}
	}
}

// sync fetches once and applies what changed.
func (l *sourceLoop) sync(ctx context.Context, why string) {
	log := l.log.WithValues("trigger", why)
	start := time.Now()
	art, err := source.Fetch(ctx, l.opts.Source, l.last)
	l.metrics.ObserveFetch(time.Since(start), err)
	if errors.Is(err, source.ErrUnchanged) {
		l.setFetchErr(ctx, nil)
		return
	}
	if err != nil {
		log.Error(err, "fetching the Git source; the last good state keeps running")
		l.setFetchErr(ctx, err)
		return
	}
	l.setFetchErr(ctx, nil)
	log = log.WithValues("revision", art.Revision)
	// --path stays inside the checkout, symlinks included.
	dir, err := load.ResolvePath(art.Dir, l.opts.Path)
	if err != nil {
		l.setLoad(ctx, art.Revision, nil, err)
		return
	}
	label := strings.TrimSuffix(path.Join(".", l.opts.Path), "/")
	root, err := openRoot(dir)
	var repo *load.Repository
	if err == nil {
		repo, err = load.FS(root, label, platzwart.Builtin(), "")
	}
	if err != nil {
		log.Error(err, "revision is invalid; nothing is applied, the last good state keeps running")
		l.setLoad(ctx, art.Revision, nil, err)
		l.last = art.Revision
		return
	}
	// Publish the revision's catalog before any Workplace of it is applied, so the
	// reconcile that the apply triggers plans with exactly this revision's components,
	// profiles and charts.
	l.setLoad(ctx, art.Revision, repo, nil)
	var (
		mu        sync.Mutex
		applyErrs []error
		wg        sync.WaitGroup
	)
	// Applied several at once: a revision touching a thousand Workplaces is a
	// thousand round trips.
	sem := make(chan struct{}, applyParallelism)
	for _, w := range repo.Workplaces {
		// Several installs may share one repository and split its Workplaces by label.
		if !l.opts.Selector.Matches(labels.Set(w.Labels)) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := l.applyWorkplace(ctx, w, art); err != nil {
				mu.Lock()
				applyErrs = append(applyErrs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(applyErrs...); err != nil {
		// l.last stays: the next poll applies the revision again.
		log.Error(err, "applying Workplaces; will retry")
		return
	}
	l.last = art.Revision
	if l.wake != nil {
		l.wake(ctx)
	}
	log.Info("applied source revision", "workplaces", len(repo.Workplaces), "commit", art.Commit, "verified", art.Verified)
}

// applyParallelism bounds the Workplace documents applied at once.
const applyParallelism = 8

// applyWorkplace server-side applies one Workplace document, creating its namespace
// when missing.
func (l *sourceLoop) applyWorkplace(ctx context.Context, w *load.Workplace, art *source.Artifact) error {
	if _, err := kube.EnsureNamespace(ctx, l.kube.Clientset, w.Namespace, fieldOwner); err != nil {
		return err
	}
	doc := map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       v1alpha1.WorkplaceKind,
		"metadata": map[string]any{
			"name":      w.Name,
			"namespace": w.Namespace,
			"labels":    mergeStrings(w.Labels, map[string]string{LabelSource: l.opts.Name}),
			"annotations": mergeStrings(w.Annotations, map[string]string{
				AnnotationRevision:   art.Revision,
				AnnotationCommitTime: art.CommitTime.UTC().Format(time.RFC3339),
				AnnotationFile:       w.File,
			}),
		},
	}
	spec, err := toMap(w.Spec)
	if err != nil {
		return err
	}
	doc["spec"] = spec
	u := &unstructured.Unstructured{Object: doc}
	if err := l.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("workplace %s/%s: %w", w.Namespace, w.Name, err)
	}
	return nil
}

// setLoad records the result of loading a revision and asks every Workplace of this
// source to be reconciled, so their status tells.
func (l *sourceLoop) setLoad(ctx context.Context, revision string, repo *load.Repository, err error) {
	l.state.mu.Lock()
	l.state.revision = revision
	l.state.loadErr = err
	if repo != nil {
		kept := l.state.repos[:0:0]
		for _, r := range l.state.repos {
			if r.revision != revision {
				kept = append(kept, r)
			}
		}
		kept = append(kept, loadedRepo{revision: revision, repo: repo})
		if len(kept) > loadedRevisions {
			kept = kept[len(kept)-loadedRevisions:]
		}
		l.state.repos = kept
	}
	l.state.mu.Unlock()
	if err != nil {
		l.touchAll(ctx, revision)
	}
}

// setFetchErr records a fetch failure (or its end) and mirrors it in the SourceReady
// condition of this source's Workplaces, writing only on a change.
func (l *sourceLoop) setFetchErr(ctx context.Context, err error) {
	l.state.mu.Lock()
	prev := l.state.fetchErr
	l.state.fetchErr = err
	l.state.mu.Unlock()
	if (prev == nil) == (err == nil) && (err == nil || prev.Error() == err.Error()) {
		return
	}
	cond := metav1.Condition{Type: ConditionSourceReady, Status: metav1.ConditionTrue, Reason: "Fetched",
		Message: "the Git source is reachable"}
	if err != nil {
		cond = metav1.Condition{Type: ConditionSourceReady, Status: metav1.ConditionFalse, Reason: "FetchFailed",
			Message: "the last good state keeps running: " + err.Error()}
		if errors.Is(err, source.ErrUnverified) {
			cond.Reason = "VerificationFailed"
		}
	}
	var list v1alpha1.WorkplaceList
	if err := l.client.List(ctx, &list, client.MatchingLabels{LabelSource: l.opts.Name}); err != nil {
		l.log.Error(err, "listing Workplaces to report the source condition")
		return
	}
	for i := range list.Items {
		key := client.ObjectKeyFromObject(&list.Items[i])
		// Optimistic concurrency: the Workplace reconciler writes the other conditions
		// of the same list; a conflict starts again from the API server's copy, so
		// neither writer drops what the other wrote.
		err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			cur := &v1alpha1.Workplace{}
			if err := l.reader.Get(ctx, key, cur); err != nil {
				return err
			}
			next := cur.DeepCopy()
			meta.SetStatusCondition(&next.Status.Conditions, cond)
			return l.client.Status().Patch(ctx, next, client.MergeFromWithOptions(cur, client.MergeFromWithOptimisticLock{}))
		})
		if err != nil {
			l.log.Error(err, "reporting the source condition", "workplace", key.String())
		}
	}
}

// touchAll sets the revision annotation on every Workplace of this source, so each is
// reconciled and reports the state of that revision.
func (l *sourceLoop) touchAll(ctx context.Context, revision string) {
	var list v1alpha1.WorkplaceList
	if err := l.client.List(ctx, &list, client.MatchingLabels{LabelSource: l.opts.Name}); err != nil {
		l.log.Error(err, "listing Workplaces")
		return
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationRevision: revision}}})
	for i := range list.Items {
		w := &list.Items[i]
		if err := l.client.Patch(ctx, w, client.RawPatch(types.MergePatchType, patch)); err != nil {
			l.log.Error(err, "annotating Workplace", "workplace", client.ObjectKeyFromObject(w).String())
		}
	}
}

func mergeStrings(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func toMap(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	return out, json.Unmarshal(data, &out)
}
