package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/plan"
)

const (
	// LabelMigrationOf names, on a migration Job, the release it migrates.
	LabelMigrationOf = "platzwart.io/migration-of"
	// LabelMigration is the migration's name within its version.
	LabelMigration = "platzwart.io/migration"
	// LabelMigrationSpec identifies the migration as declared (version, phase and
	// rendered Job): a failed Job of it blocks the step until it is deleted.
	LabelMigrationSpec = "platzwart.io/migration-spec"
)

// MigrationError is a migration Job that failed or did not finish in time: the
// upgrade path stops there.
type MigrationError struct {
	// Release, Version and Phase say which step's migration it was.
	Release string
	Version string
	Phase   catalog.Phase
	// Migration is its name, Job the Job that ran it, Namespace where.
	Migration string
	Job       string
	Namespace string
	// Reason is the Job's failure message, or that it timed out.
	Reason string
}

func (e *MigrationError) Error() string {
	return fmt.Sprintf("%s-migration %s of version %s failed: Job %s: %s (kubectl -n %s logs job/%s; delete the Job to run the migration again)",
		e.Phase, e.Migration, e.Version, e.Job, e.Reason, e.Namespace, e.Job)
}

// migrate runs the migrations of one phase of the step to rel.Version, in
// declaration order, each a Job that must complete before the next starts. A Job
// left by an interrupted run is waited for, not started again; one that completed
// is not run again; one that failed fails the step again until it is deleted (its
// name follows its rendered spec, so a corrected migration gets a new Job).
//
// Only migrations that apply to a step from version from run (plan.Migration.From).
//
// revision is the Helm revision the attempt belongs to: for pre-migrations the
// ready revision the step starts from, for post-migrations the revision the step
// upgraded to. A run resumed after a stop finds the same Jobs; a new attempt after
// a rollback (a new revision) runs them again.
func (e *Engine) migrate(ctx, wctx context.Context, s Step, rel *plan.Release, from string, revision int, phase catalog.Phase, start time.Time) error {
	for _, m := range rel.Migrations {
		if m.Phase != phase || !m.Applies(from) {
			continue
		}
		if err := e.runMigration(ctx, wctx, s, rel, m, revision, start); err != nil {
			return err
		}
	}
	return nil
}

// runMigration runs one migration Job and waits until it completed.
func (e *Engine) runMigration(ctx, wctx context.Context, s Step, rel *plan.Release, m plan.Migration, revision int, start time.Time) error {
	spec, err := migrationSpecHash(rel, m)
	if err != nil {
		return err
	}
	name := migrationJobName(rel, m, spec, revision)
	labels := map[string]string{LabelWorkplace: rel.Workplace, LabelMigrationOf: rel.Name, LabelMigration: m.Name, LabelVersion: rel.Version,
		LabelMigrationSpec: spec}
	js := *m.Job.DeepCopy()
	if js.ActiveDeadlineSeconds == nil {
		js.ActiveDeadlineSeconds = ptr.To(int64(m.Timeout.Seconds()))
	}
	tl := maps.Clone(js.Template.Labels)
	if tl == nil {
		tl = map[string]string{}
	}
	maps.Copy(tl, labels)
	js.Template.Labels = tl
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: rel.Namespace, Labels: labels}, Spec: js}
	jobs := e.cluster.Clientset.BatchV1().Jobs(rel.Namespace)
	what := fmt.Sprintf("%s-migration %s of version %s: Job %s", m.Phase, m.Name, rel.Version, name)
	existing, err := jobs.Get(wctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		if done, failed := jobEnded(existing); done {
			e.progress(s.Release, "migration", time.Since(start), what+" completed before")
			return nil
		} else if failed != "" {
			return &MigrationError{Release: rel.Name, Version: rel.Version, Phase: m.Phase, Migration: m.Name, Job: name, Namespace: rel.Namespace, Reason: failed}
		}
		e.progress(s.Release, "migration", time.Since(start), what+" (started before: waiting)")
	case apierrors.IsNotFound(err):
		if _, err := jobs.Create(wctx, job, metav1.CreateOptions{FieldManager: "platzwart"}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%s-migration %s of version %s: create Job %s: %w", m.Phase, m.Name, rel.Version, name, err)
		}
		e.progress(s.Release, "migration", time.Since(start), what+" created")
	default:
		return fmt.Errorf("%s-migration %s of version %s: read Job %s: %w", m.Phase, m.Name, rel.Version, name, err)
	}
	if _, err := e.waitJob(ctx, rel.Namespace, name, m.Timeout); err != nil {
		var failed *jobFailedError
		if errors.As(err, &failed) {
			return &MigrationError{Release: rel.Name, Version: rel.Version, Phase: m.Phase, Migration: m.Name, Job: name, Namespace: rel.Namespace, Reason: failed.reason}
		}
		return fmt.Errorf("%s-migration %s of version %s: %w", m.Phase, m.Name, rel.Version, err)
	}
	e.progress(s.Release, "migration", time.Since(start), what+" completed")
	return nil
}

// migrationSpecHash identifies a migration as declared: a hash of the version, the
// phase and the rendered Job spec (a corrected migration is another one).
func migrationSpecHash(rel *plan.Release, m plan.Migration) (string, error) {
	data, err := json.Marshal(struct {
		Version string
		Phase   catalog.Phase
		Job     batchv1.JobSpec
	}{rel.Version, m.Phase, m.Job})
	if err != nil {
		return "", fmt.Errorf("migration %s of %s: %w", m.Name, rel.Name, err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:16], nil
}

// migrationJobName is <release>-<migration>-<hash of spec and revision>, at most 63
// characters.
func migrationJobName(rel *plan.Release, m plan.Migration, spec string, revision int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", spec, revision)))
	suffix := "-" + m.Name + "-" + hex.EncodeToString(sum[:])[:8]
	base := rel.Name
	if len(base)+len(suffix) > 63 {
		base = strings.TrimRight(base[:max(0, 63-len(suffix))], "-")
	}
	return strings.TrimLeft(base+suffix, "-")
}

// jobFailedError is a Job with condition Failed.
type jobFailedError struct {
	job, reason string
}

func (e *jobFailedError) Error() string { return fmt.Sprintf("Job %s failed: %s", e.job, e.reason) }

// jobEnded reports whether a Job completed, or why it failed ("" while it runs).
func jobEnded(j *batchv1.Job) (complete bool, failed string) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, ""
		case batchv1.JobFailed:
			reason := c.Message
			if reason == "" {
				reason = c.Reason
			}
			if reason == "" {
				reason = "failed"
			}
			return false, reason
		}
	}
	return false, ""
}

// waitJob waits until a Job completed and returns when; a failed Job is a
// *jobFailedError, a Job still running after timeout an error saying so.
func (e *Engine) waitJob(ctx context.Context, namespace, name string, timeout time.Duration) (time.Time, error) {
	jobs := e.cluster.Clientset.BatchV1().Jobs(namespace)
	var finished time.Time
	err := wait.PollUntilContextTimeout(ctx, e.opts.PollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		j, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		complete, failed := jobEnded(j)
		switch {
		case complete:
			for _, c := range j.Status.Conditions {
				if c.Type == batchv1.JobComplete {
					finished = c.LastTransitionTime.Time
				}
			}
			return true, nil
		case failed != "":
			return false, &jobFailedError{job: name, reason: failed}
		}
		return false, nil
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return time.Time{}, &jobFailedError{job: name, reason: fmt.Sprintf("did not complete within %s", timeout)}
		}
		return time.Time{}, err
	}
	return finished, nil
}

// PathError is an upgrade path that stopped at one of its steps. The backups taken
// on the way stay, and the message says how to restore each.
type PathError struct {
	// Release and Namespace of the component.
	Release   string
	Namespace string
	// From is the version the path started at, Versions the versions it goes through.
	From     string
	Versions []string
	// Step is the 1-based step that failed.
	Step int
	// Err is why it failed: a *MigrationError, a failed or rolled-back upgrade, a
	// backup that failed.
	Err error
	// Backups are the backups taken before risky steps of this path.
	Backups []Backup
}

func (e *PathError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version path %s → %s stopped at step %d of %d (version %s): %v",
		e.From, strings.Join(e.Versions, " → "), e.Step, len(e.Versions), e.Versions[e.Step-1], e.Err)
	for i, bk := range e.Backups {
		if i == 0 {
			b.WriteString("; backups kept:")
		}
		fmt.Fprintf(&b, " database %s before %s in %s %s (restore: platzwart restore %s -n %s)", bk.Database, bk.Version, bk.File, bk.Where(), bk.Job, e.Namespace)
	}
	return b.String()
}

func (e *PathError) Unwrap() error { return e.Err }

// pathError wraps the failure of step i of an upgrade path when the path changes the
// component's version; an upgrade that keeps it returns err as it is.
func pathError(s Step, path []*plan.Release, i int, err error, backups []Backup) error {
	from := ""
	if s.current != nil {
		from = s.current.readyVersion()
	}
	if from == "" || path[i].Version == "" || (len(path) == 1 && path[0].Version == from) {
		return err
	}
	versions := make([]string, len(path))
	for j, p := range path {
		versions[j] = p.Version
	}
	return &PathError{Release: s.Release, Namespace: s.planned.Namespace, From: from, Versions: versions, Step: i + 1, Err: err, Backups: slices.Clone(backups)}
}

// hasPhase reports whether a step from version from has migrations of a phase.
func hasPhase(rel *plan.Release, from string, phase catalog.Phase) bool {
	for _, m := range rel.Migrations {
		if m.Phase == phase && m.Applies(from) {
			return true
		}
	}
	return false
}

// PathStep is where an upgrade path is, for progress: the step's number (1-based)
// of Steps, the Version it reaches, and the Phase within it (start, backup,
// pre-migrations, upgrade, post-migrations).
type PathStep struct {
	Namespace string
	Workplace string
	Step      int
	Steps     int
	Version   string
	Phase     string
}

// pathProgress reports the phase of a step of an upgrade path that changes the
// component's version.
func (e *Engine) pathProgress(s Step, i, n int, version, phase string, elapsed time.Duration) {
	if e.opts.Progress == nil || version == "" || len(s.Versions) == 0 {
		return
	}
	e.opts.Progress(Event{Release: s.Release, Step: "path", Elapsed: elapsed,
		Message: fmt.Sprintf("step %d of %d: version %s: %s", i+1, n, version, phase),
		Path:    &PathStep{Namespace: s.planned.Namespace, Workplace: s.planned.Workplace, Step: i + 1, Steps: n, Version: version, Phase: phase}})
}

// failedMigration returns the MigrationError of a migration of the step to
// rel.Version whose Job failed in an earlier run and is still there: the step is
// not tried again (no backup, no upgrade, no rollback) until that Job is deleted.
func (e *Engine) failedMigration(ctx context.Context, rel *plan.Release, from string) error {
	jobs := e.cluster.Clientset.BatchV1().Jobs(rel.Namespace)
	for _, m := range rel.Migrations {
		if !m.Applies(from) {
			continue
		}
		spec, err := migrationSpecHash(rel, m)
		if err != nil {
			return err
		}
		sel := fmt.Sprintf("%s=%s,%s=%s,%s=%s", LabelMigrationOf, rel.Name, LabelMigration, m.Name, LabelMigrationSpec, spec)
		list, err := jobs.List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return fmt.Errorf("%s-migration %s of version %s: listing its Jobs: %w", m.Phase, m.Name, rel.Version, err)
		}
		for i := range list.Items {
			if _, failed := jobEnded(&list.Items[i]); failed != "" {
				return &MigrationError{Release: rel.Name, Version: rel.Version, Phase: m.Phase, Migration: m.Name, Job: list.Items[i].Name, Namespace: rel.Namespace, Reason: failed}
			}
		}
	}
	return nil
}

// ClaimWithS3Error is a step whose migration reads the backups from the workplace's
// backup claim while the profile sends backups to S3, where no claim is made: the
// step is refused before anything is written.
type ClaimWithS3Error struct {
	Release, Version, Migration, Claim string
}

func (e *ClaimWithS3Error) Error() string {
	return fmt.Sprintf("the step of %s to version %s runs migration %s, which reads the backups from the claim %s, but the profile's spec.backups.s3 sends them to S3 and no claim is made: take this step with a claim target (spec.backups without s3) and switch to S3 afterwards",
		e.Release, e.Version, e.Migration, e.Claim)
}

// claimWithS3 refuses a step from version from whose applying migrations mount the
// backup claim while the backups go to S3.
func claimWithS3(rel *plan.Release, from string) error {
	if rel.Backups.S3 == nil {
		return nil
	}
	claim := BackupClaim(rel.Workplace)
	for _, m := range rel.Migrations {
		if !m.Applies(from) {
			continue
		}
		for _, v := range m.Job.Template.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
				return &ClaimWithS3Error{Release: rel.Name, Version: rel.Version, Migration: m.Name, Claim: claim}
			}
		}
	}
	return nil
}
