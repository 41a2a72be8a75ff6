package restore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/rclone"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/workload"
)

// Options say which backup to restore and how.
type Options struct {
	// Namespace and Workplace ("" = whichever workplace the backup belongs to).
	Namespace, Workplace string
	// Backup is the backup Job's name or its dump file, as List shows them.
	Backup string
	// Timeout bounds each wait: the consumers' pods ending, the restore Job, the
	// consumers being ready again (default 30m).
	Timeout time.Duration
	// Holder is the identity recorded in the workplace Lease (release.Holder).
	Holder string
	// Progress receives a line per step, synchronously, before the next step starts;
	// nil discards.
	Progress func(release.Event)
	// PollInterval is how often state is polled (default 500ms).
	PollInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.Holder == "" {
		o.Holder = release.Holder("platzwart-restore")
	}
	return o
}

// AnnotationReplicas records, on a Deployment or StatefulSet a restore stopped, the
// replicas to bring back (the engine's steps that stop consumers use the same
// record): a restore that ended before they were back is finished by running it
// again.
const AnnotationReplicas = workload.AnnotationStoppedReplicas

// Helm's annotations on every object it installs.
const (
	helmReleaseName      = "meta.helm.sh/release-name"
	helmReleaseNamespace = "meta.helm.sh/release-namespace"
)

// Consumer is a Deployment or StatefulSet of the release that owns the database.
type Consumer struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Replicas it runs with (recorded before it is stopped).
	Replicas int32 `json:"replicas"`
}

func (c Consumer) String() string {
	return fmt.Sprintf("%s %s (%d replicas)", c.Kind, c.Name, c.Replicas)
}

// Plan is what a restore will do, as read before anything is written.
type Plan struct {
	Backup Backup `json:"backup"`
	// Consumers are stopped during the restore.
	Consumers []Consumer `json:"consumers"`
}

// Result is what a restore did.
type Result struct {
	Backup Backup `json:"backup"`
	// Job ran restore.sh.
	Job string `json:"job"`
	// Consumers were stopped and are back with their replicas.
	Consumers []Consumer `json:"consumers"`
	// Took is how long the restore took.
	Took time.Duration `json:"took"`
}

// Prepare finds the backup and checks, without writing anything, that it can be
// restored: the backup is complete and its record names its database and file; its
// release is a release of the workplace and owns the database (the database's
// password Secret of that release exists); the PostgreSQL server is ready and its
// chart has restore.sh. It lists the consumers a restore stops.
func Prepare(ctx context.Context, c *kube.Cluster, o Options) (*Plan, error) {
	list, err := List(ctx, c.Clientset, o.Namespace, o.Workplace)
	if err != nil {
		return nil, err
	}
	b, err := find(list, o.Backup, o.Namespace, o.Workplace)
	if err != nil {
		return nil, err
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("backup %s: %s; nothing was changed", b.Job, fmt.Sprintf(format, args...))
	}
	switch {
	case b.State != StateComplete:
		msg := ""
		if b.Message != "" {
			msg = " (" + b.Message + ")"
		}
		return nil, refuse("the Job is %s%s: only a complete backup has a dump to restore", b.State, msg)
	case b.Workplace == "" || b.Release == "" || b.Server == "":
		return nil, refuse("the Job does not name its workplace, release and server")
	case b.Record != nil && (b.Record.Database != b.Database || b.Record.File != b.File):
		return nil, refuse("its pod reported %s of database %s, but the Job dumped %s of database %s", b.Record.File, b.Record.Database, b.File, b.Database)
	}
	ns := b.Namespace
	// Helm's release records carry the workplace label platzwart sets on them.
	records := &metav1.PartialObjectMetadataList{}
	records.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := c.Client.List(ctx, records, client.InNamespace(ns), client.MatchingLabels{
		"owner": "helm", "name": b.Release, release.LabelWorkplace: b.Workplace}); err != nil {
		return nil, fmt.Errorf("release %s/%s: %w", ns, b.Release, err)
	}
	if len(records.Items) == 0 {
		return nil, refuse("release %s is not a release of workplace %s/%s", b.Release, ns, b.Workplace)
	}
	// Each consumer database has a password Secret named after its release.
	secret := &metav1.PartialObjectMetadata{}
	secret.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	name := contract.DatabasePasswordSecret(b.Release, b.Database).Name
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, secret); apierrors.IsNotFound(err) {
		return nil, refuse("database %s is not a database of release %s (it has no Secret %s)", b.Database, b.Release, name)
	} else if err != nil {
		return nil, fmt.Errorf("the password Secret %s/%s of database %s: %w", ns, name, b.Database, err)
	}
	sts, err := c.Clientset.AppsV1().StatefulSets(ns).Get(ctx, b.Server, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, refuse("the PostgreSQL server %s does not exist", b.Server)
	} else if err != nil {
		return nil, fmt.Errorf("the PostgreSQL server %s/%s: %w", ns, b.Server, err)
	}
	if _, _, err := serverEnv(sts); err != nil {
		return nil, refuse("%v", err)
	}
	if sts.Status.ReadyReplicas < 1 {
		return nil, refuse("the PostgreSQL server %s is not ready", b.Server)
	}
	cm, err := c.Clientset.CoreV1().ConfigMaps(ns).Get(ctx, scriptsConfigMap(b.Server), metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("ConfigMap %s/%s: %w", ns, scriptsConfigMap(b.Server), err)
	}
	if err != nil || cm.Data["restore.sh"] == "" {
		return nil, refuse("the server's ConfigMap %s has no restore.sh (upgrade the postgresql release first)", scriptsConfigMap(b.Server))
	}
	if b.Location.S3 != nil {
		// The object is downloaded with the backup's own upload settings: the Secrets
		// they refer to must still be there.
		up, ok := uploadContainer(b)
		if !ok {
			return nil, refuse("the Job sent the dump to %s but has no container %s to read it back with", b.Location.S3, rclone.UploadContainer)
		}
		for _, name := range rclone.Secrets(*b.pod, up) {
			// Metadata only: the values are not read.
			s := &metav1.PartialObjectMetadata{}
			s.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
			if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); apierrors.IsNotFound(err) {
				return nil, refuse("the Secret %s, which the download from %s needs, does not exist", name, b.Location.S3)
			} else if err != nil {
				return nil, fmt.Errorf("the Secret %s/%s: %w", ns, name, err)
			}
		}
	} else if _, err := c.Clientset.CoreV1().PersistentVolumeClaims(ns).Get(ctx, b.Claim, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return nil, refuse("the backup claim %s does not exist", b.Claim)
	} else if err != nil {
		return nil, fmt.Errorf("PersistentVolumeClaim %s/%s: %w", ns, b.Claim, err)
	}
	consumers, err := listConsumers(ctx, c, b)
	if err != nil {
		return nil, err
	}
	p := &Plan{Backup: b}
	for _, w := range consumers {
		p.Consumers = append(p.Consumers, consumerOf(w))
	}
	return p, nil
}

// JobFailedError says that the restore Job failed. restore.sh swaps the restored
// database in only at its end, so the database is as it was.
type JobFailedError struct {
	Namespace, Job, Database, Message string
}

func (e *JobFailedError) Error() string {
	return fmt.Sprintf("restore Job %s failed (%s); restore.sh replaces the database only after a complete restore, so database %s is as it was; read kubectl -n %s logs job/%s",
		e.Job, e.Message, e.Database, e.Namespace, e.Job)
}

// Restore restores a backup into its database (see Prepare for what is checked
// first, and the package documentation). It takes the workplace Lease, so no apply
// or controller acts on the workplace meanwhile (they report the Lease as held);
// records the replicas of the release's Deployments and StatefulSets and scales them
// to 0; waits until their pods are gone; runs restore.sh in a Job and waits for it;
// brings the consumers back (also when the Job failed) and waits until they are
// ready; releases the Lease.
//
// ctx is the stop signal. Stopped before the Job is created, the consumers come
// back and nothing is restored. Once the Job exists it runs to its end (cutting
// restore.sh during its swap would leave the database without its name), so Restore
// keeps waiting for it, up to Timeout, under the Lease's own context.
func Restore(ctx context.Context, c *kube.Cluster, o Options) (*Result, error) {
	o = o.withDefaults()
	start := time.Now()
	p, err := Prepare(ctx, c, o)
	if err != nil {
		return nil, err
	}
	b := p.Backup
	// The Lease outlives the stop signal: the consumers must come back after it.
	lock, err := release.New(c, release.Options{}).Lock(ctx, context.WithoutCancel(ctx), b.Namespace, b.Workplace, o.Holder)
	if err != nil {
		return nil, fmt.Errorf("backup %s: nothing was changed: %w", b.Job, err)
	}
	r := &run{c: c, o: o, b: b, start: start}
	res, err := r.restore(ctx, lock.Context())
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if uerr := lock.Unlock(uctx); uerr != nil {
		err = errors.Join(err, fmt.Errorf("releasing the workplace lease: %w", uerr))
	}
	return res, err
}

// run is one restore under the Lease.
type run struct {
	c     *kube.Cluster
	o     Options
	b     Backup
	start time.Time
}

func (r *run) progress(step, format string, args ...any) {
	if r.o.Progress != nil {
		r.o.Progress(release.Event{Release: r.b.Release, Step: step, Elapsed: time.Since(r.start), Message: fmt.Sprintf(format, args...)})
	}
}

// restore does the work; wctx is the Lease's context, which every write uses.
func (r *run) restore(ctx, wctx context.Context) (*Result, error) {
	b := r.b
	adopt, err := r.runningJob(wctx)
	if err != nil {
		return nil, err
	}
	consumers, err := listConsumers(wctx, r.c, b)
	if err != nil {
		return nil, err
	}
	res := &Result{Backup: b}
	for _, w := range consumers {
		res.Consumers = append(res.Consumers, consumerOf(w))
	}
	// From here on the consumers are brought back on every way out but one: a Job
	// that may still be running.
	stopped := time.Now()
	if err := r.stop(wctx, consumers); err != nil {
		return nil, r.bringBack(wctx, fmt.Errorf("stopping the consumers of database %s: %w", b.Database, err))
	}
	if err := r.waitGone(ctx, wctx, consumers); err != nil {
		return nil, r.bringBack(wctx, err)
	}
	r.progress("stopped", "consumers of database %s stopped in %s", b.Database, time.Since(stopped).Round(100*time.Millisecond))

	jobs := r.c.Clientset.BatchV1().Jobs(b.Namespace)
	name := adopt
	if name == "" {
		if err := ctx.Err(); err != nil {
			return nil, r.bringBack(wctx, fmt.Errorf("stopped before the restore began: %w; nothing was restored", err))
		}
		sts, err := r.c.Clientset.AppsV1().StatefulSets(b.Namespace).Get(wctx, b.Server, metav1.GetOptions{})
		if err != nil {
			return nil, r.bringBack(wctx, fmt.Errorf("the PostgreSQL server %s: %w", b.Server, err))
		}
		job, err := NewJob(b, sts, jobName(b.Workplace, b.Database, time.Now()))
		if err != nil {
			return nil, r.bringBack(wctx, err)
		}
		if _, err := jobs.Create(wctx, job, metav1.CreateOptions{FieldManager: "platzwart"}); err != nil {
			return nil, r.bringBack(wctx, fmt.Errorf("create the restore Job %s: %w", job.Name, err))
		}
		name = job.Name
		if o := b.Location.S3; o != nil {
			r.progress("restore", "Job %s: downloads %s, then restore.sh restores it into database %s on %s", name, o, b.Database, b.Server)
		} else {
			r.progress("restore", "Job %s: restore.sh restores %s into database %s on %s", name, b.File, b.Database, b.Server)
		}
	} else {
		r.progress("restore", "Job %s of an earlier restore of this backup is still running: waiting for it", name)
	}
	res.Job = name
	jobStart := time.Now()
	state, msg, err := r.waitJob(ctx, wctx, name)
	if err != nil {
		// The Job may still run: its consumers stay stopped so that none connects
		// during the swap; running the restore again waits for it and finishes.
		return res, fmt.Errorf("%w; the consumers of database %s stay stopped (replicas recorded in annotation %s) while the Job may still run: "+
			"read kubectl -n %s logs job/%s, then run platzwart restore %s -n %s again to wait for it and bring them back",
			err, b.Database, AnnotationReplicas, b.Namespace, name, b.Job, b.Namespace)
	}
	if state == StateFailed {
		r.progress("failed", "Job %s failed after %s: %s; database %s is as it was", name, time.Since(jobStart).Round(100*time.Millisecond), msg, b.Database)
		return res, r.bringBack(wctx, &JobFailedError{Namespace: b.Namespace, Job: name, Database: b.Database, Message: msg})
	}
	r.progress("restored", "database %s restored from %s in %s; the previous database is kept as %s_before_<UTC time> (connections disabled)",
		b.Database, b.File, time.Since(jobStart).Round(100*time.Millisecond), b.Database)
	if err := r.bringBack(wctx, nil); err != nil {
		return res, fmt.Errorf("database %s was restored, but: %w", b.Database, err)
	}
	res.Took = time.Since(r.start)
	return res, nil
}

// runningJob returns a restore Job of this backup still running from an earlier
// restore, to wait for instead of starting another; a running restore of another
// backup of the workplace is refused.
func (r *run) runningJob(ctx context.Context) (string, error) {
	list, err := r.c.Clientset.BatchV1().Jobs(r.b.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelRestoreOf + "," + release.LabelWorkplace + "=" + r.b.Workplace})
	if err != nil {
		return "", fmt.Errorf("listing restore Jobs in %s: %w", r.b.Namespace, err)
	}
	for i := range list.Items {
		j := &list.Items[i]
		if state, _, _ := jobState(j); state != StateRunning || j.DeletionTimestamp != nil {
			continue
		}
		if j.Labels[LabelRestoreOf] != r.b.Job {
			return "", fmt.Errorf("restore Job %s (of backup %s) is still running in workplace %s/%s: wait for it (kubectl -n %s wait --for=condition=Complete job/%s) or delete it; nothing was changed",
				j.Name, j.Labels[LabelRestoreOf], r.b.Namespace, r.b.Workplace, r.b.Namespace, j.Name)
		}
		return j.Name, nil
	}
	return "", nil
}

// waitJob waits until the Job completes or fails, up to Timeout. A stop signal does
// not end the wait (see Restore); it is only reported.
func (r *run) waitJob(ctx, wctx context.Context, name string) (State, string, error) {
	jobs := r.c.Clientset.BatchV1().Jobs(r.b.Namespace)
	noted := false
	var state State
	var msg string
	err := wait.PollUntilContextTimeout(wctx, r.o.PollInterval, r.o.Timeout, true, func(pctx context.Context) (bool, error) {
		if ctx.Err() != nil && !noted {
			noted = true
			r.progress("restore", "stop requested: the restore Job %s runs to its end, waiting for it", name)
		}
		j, err := jobs.Get(pctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, fmt.Errorf("the restore Job %s was deleted", name)
		}
		if err != nil {
			return false, nil
		}
		state, msg, _ = jobState(j)
		return state != StateRunning, nil
	})
	if err != nil {
		if cause := context.Cause(wctx); cause != nil {
			return "", "", fmt.Errorf("waiting for the restore Job %s: %w", name, cause)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return "", "", fmt.Errorf("the restore Job %s did not end within %s", name, r.o.Timeout)
		}
		return "", "", err
	}
	return state, msg, nil
}

func consumerOf(w workload.Workload) Consumer {
	return Consumer{Kind: w.Kind, Name: w.Name, Replicas: w.Want()}
}

// listConsumers returns the Deployments and StatefulSets Helm installed for the
// backup's release (its release-name annotation), never the server's own.
func listConsumers(ctx context.Context, c *kube.Cluster, b Backup) ([]workload.Workload, error) {
	return workload.List(ctx, c.Clientset, b.Namespace, func(m metav1.ObjectMeta) bool { return consumes(b, m) })
}

// stop records each workload's replicas in AnnotationReplicas and scales it to 0, in
// one request. A workload that carries the annotation already (a restore that
// ended early) keeps what it recorded.
func (r *run) stop(ctx context.Context, ws []workload.Workload) error {
	if len(ws) == 0 {
		r.progress("stop", "release %s has no Deployments or StatefulSets to stop", r.b.Release)
	}
	for _, w := range ws {
		msg := fmt.Sprintf("%s %s: %d → 0 replicas (recorded in annotation %s)", w.Kind, w.Name, w.Replicas, AnnotationReplicas)
		if w.Stopped {
			msg = fmt.Sprintf("%s %s: stopped by an earlier restore, %d replicas recorded", w.Kind, w.Name, w.Recorded)
		}
		r.progress("stop", "%s", msg)
		if err := workload.Stop(ctx, r.c.Clientset, w); err != nil {
			return err
		}
	}
	return nil
}

// waitGone waits until no pod of the workloads is left (running or terminating). A
// stop signal ends the wait.
func (r *run) waitGone(ctx, wctx context.Context, ws []workload.Workload) error {
	pctx, cancel := context.WithCancelCause(wctx)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() {
		cancel(fmt.Errorf("stopped while the consumers were stopping: %w; nothing was restored", context.Cause(ctx)))
	})
	defer stop()
	var left []string
	err := wait.PollUntilContextTimeout(pctx, r.o.PollInterval, r.o.Timeout, true, func(pctx context.Context) (bool, error) {
		var err error
		left, err = workload.PodsLeft(pctx, r.c.Clientset, ws)
		return err == nil && len(left) == 0, nil
	})
	if err == nil {
		return nil
	}
	if cause := context.Cause(pctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("the consumers' pods did not end within %s (left: %s); nothing was restored", r.o.Timeout, strings.Join(left, ", "))
	}
	return err
}

// bringBack scales every workload of the release that carries AnnotationReplicas
// back to the replicas recorded there, removes the annotation and waits until they
// are ready. cause is the error that led here (nil after a restore); it comes first
// in the returned error.
func (r *run) bringBack(wctx context.Context, cause error) error {
	b := r.b
	if err := context.Cause(wctx); err != nil {
		return errors.Join(cause, fmt.Errorf("the consumers of database %s could not be brought back (%w): run platzwart restore %s -n %s again to finish", b.Database, err, b.Job, b.Namespace))
	}
	ws, err := listConsumers(wctx, r.c, b)
	if err == nil {
		for _, w := range ws {
			if !w.Stopped {
				continue
			}
			r.progress("start", "%s %s: 0 → %d replicas", w.Kind, w.Name, w.Recorded)
			if err = workload.Start(wctx, r.c.Clientset, w); err != nil {
				break
			}
		}
	}
	if err != nil {
		return errors.Join(cause, fmt.Errorf("bringing back the consumers of database %s: %w; run platzwart restore %s -n %s again to finish", b.Database, err, b.Job, b.Namespace))
	}
	back := time.Now()
	if err := r.waitReady(wctx); err != nil {
		return errors.Join(cause, err)
	}
	r.progress("ready", "consumers of database %s ready in %s", b.Database, time.Since(back).Round(100*time.Millisecond))
	return cause
}

// waitReady waits until the release's Deployments and StatefulSets run their
// replicas ready, up to Timeout.
func (r *run) waitReady(ctx context.Context) error {
	var notReady []string
	err := wait.PollUntilContextTimeout(ctx, r.o.PollInterval, r.o.Timeout, true, func(ctx context.Context) (bool, error) {
		notReady = notReady[:0]
		ws, err := listConsumers(ctx, r.c, r.b)
		if err != nil {
			return false, nil
		}
		for _, w := range ws {
			if ok, err := workload.Ready(ctx, r.c.Clientset, w); err != nil || !ok {
				notReady = append(notReady, fmt.Sprintf("%s %s", w.Kind, w.Name))
			}
		}
		return len(notReady) == 0, nil
	})
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return fmt.Errorf("waiting for the consumers of database %s: %w", r.b.Database, cause)
		}
		slices.Sort(notReady)
		return fmt.Errorf("the consumers of database %s were started but are not ready within %s: %s", r.b.Database, r.o.Timeout, strings.Join(notReady, ", "))
	}
	return nil
}

// consumes reports whether an object is one Helm installed for the backup's release
// (never the server's own StatefulSet).
func consumes(b Backup, m metav1.ObjectMeta) bool {
	a := m.Annotations
	return a[helmReleaseName] == b.Release && (a[helmReleaseNamespace] == "" || a[helmReleaseNamespace] == b.Namespace) && m.Name != b.Server
}
