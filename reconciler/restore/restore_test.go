package restore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/restore"
)

// record is what backup.sh writes to the termination message of its container.
func record(file string, bytes int64) string {
	return fmt.Sprintf(`{"database":%q,"file":%q,"bytes":%d,"sha256":"%s","entries":42,"started":"2026-11-29T10:00:00Z","finished":"2026-11-29T10:00:07Z"}`,
		database, file, bytes, strings.Repeat("ab", 32))
}

// setRecord writes msg as the termination message of the backup container of the
// Job's pod through the status subresource (kwok completes pods without one).
func (f *fixture) setRecord(job, msg string) {
	f.t.Helper()
	ctx := f.t.Context()
	pods, err := f.kc.Clientset.CoreV1().Pods(f.ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	if err != nil || len(pods.Items) != 1 {
		f.t.Fatalf("pods of Job %s: %v (%d)", job, err, len(pods.Items))
	}
	p := pods.Items[0]
	terminated := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", Message: msg,
		StartedAt: metav1.Now(), FinishedAt: metav1.Now()}}
	i := slices.IndexFunc(p.Status.ContainerStatuses, func(cs corev1.ContainerStatus) bool { return cs.Name == "backup" })
	if i < 0 {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: "backup", Image: serverImage})
		i = len(p.Status.ContainerStatuses) - 1
	}
	p.Status.ContainerStatuses[i].State = terminated
	if _, err := f.kc.Clientset.CoreV1().Pods(f.ns).UpdateStatus(ctx, &p, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// TestListBackups lists a workplace's backup Jobs made the way the engine makes
// them: a complete one with the record its pod reported in the termination message,
// a complete one without, a failed one (its pod exits 1) and a running one (its pod
// cannot be scheduled), oldest first; another workplace's backup is left out when a
// workplace is given, and listed without.
func TestListBackups(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.c.FailJobPods(t, f.ns, "demo-synapse-backup-")
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	withRecord, withRecordFile := f.completeBackup(owner, database, "26.7.4", t0)
	f.setRecord(withRecord, "restore.sh: a line before the record\n"+record(withRecordFile, 123456))
	time.Sleep(1100 * time.Millisecond) // creation times have second resolution: keep the order
	noRecord, noRecordFile := f.completeBackup("demo-nextcloud", "nextcloud", "33.0.7", t0.Add(time.Minute))
	time.Sleep(1100 * time.Millisecond)
	failed, _ := f.backupJob("demo-synapse", "synapse", "1.140.0", t0.Add(2*time.Minute))
	f.waitJob(failed, batchv1.JobFailed)
	time.Sleep(1100 * time.Millisecond)
	running, _ := f.backupJob(owner, database, "26.8.0", t0.Add(3*time.Minute), func(j *batchv1.Job) {
		j.Spec.Template.Spec.NodeSelector = map[string]string{"platzwart.io/test": "no-such-node"}
	})
	other, _ := f.completeBackup(owner, database, "26.7.4", t0.Add(4*time.Minute))
	otherJob, err := f.kc.Clientset.BatchV1().Jobs(f.ns).Get(t.Context(), other, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	otherJob.Labels[release.LabelWorkplace] = "staging"
	if _, err := f.kc.Clientset.BatchV1().Jobs(f.ns).Update(t.Context(), otherJob, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	f.writes.Reset()
	list, err := restore.List(t.Context(), f.kc.Clientset, f.ns, workplace)
	if err != nil {
		t.Fatal(err)
	}
	var jobs []string
	for _, b := range list {
		jobs = append(jobs, b.Job)
	}
	if want := []string{withRecord, noRecord, failed, running}; !slices.Equal(jobs, want) {
		t.Fatalf("listed %v, want %v (oldest first, the other workplace's left out)", jobs, want)
	}
	b := list[0]
	if b.State != restore.StateComplete || b.Release != owner || b.Database != database || b.Server != server || b.Version != "26.7.4" ||
		b.Workplace != workplace || b.Namespace != f.ns || b.Claim != "demo-backups" || b.File != withRecordFile || b.Finished.IsZero() {
		t.Errorf("complete backup %+v", b)
	}
	if b.Record == nil || b.Record.Bytes != 123456 || b.Record.File != withRecordFile || b.Record.Entries != 42 {
		t.Errorf("record of %s: %+v, want the termination message's", b.Job, b.Record)
	}
	if b := list[1]; b.State != restore.StateComplete || b.Record != nil || b.File != noRecordFile || b.Version != "33.0.7" || b.Database != "nextcloud" {
		t.Errorf("complete backup without a record: %+v", b)
	}
	if b := list[2]; b.State != restore.StateFailed || b.Message == "" || !b.Finished.IsZero() || b.Record != nil {
		t.Errorf("failed backup: %+v, want Failed with a message", b)
	}
	if b := list[3]; b.State != restore.StateRunning || b.Message != "" || !b.Finished.IsZero() {
		t.Errorf("running backup: %+v", b)
	}

	all, err := restore.List(t.Context(), f.kc.Clientset, f.ns, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 || all[4].Job != other || all[4].Workplace != "staging" {
		t.Errorf("without a workplace: %d backups, last %+v; want 5, the last of workplace staging", len(all), all[len(all)-1])
	}
	if got := f.writes.List(); len(got) > 0 {
		t.Errorf("listing wrote: %v", got)
	}
}

// TestRestoreStopsTheConsumersFirst restores a backup of keycloak's database: when
// the consumers are reported stopped, their replicas are recorded and 0, their pods
// gone and no restore Job exists yet; when the Job exists, they are still stopped,
// and another process (the controller) cannot take the workplace's Lease. The Job
// runs restore.sh from the server's image with the superuser Secret reference and
// never a password. Afterwards keycloak's Deployment and StatefulSet run their
// replicas again, the annotation is gone, another release and the server were not
// touched, and the Lease is released.
func TestRestoreStopsTheConsumersFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job, file := f.completeBackup(owner, database, "26.7.4", time.Now())
	cs := f.kc.Clientset
	other0, server0 := f.deployment("demo-nextcloud"), f.statefulSet(server)

	controller := release.New(f.kc, release.Options{}).Guard(t.Context(), f.ns, workplace, release.Holder("platzwart-controller"))
	var steps []string
	var sawStopped, sawJob bool
	progress := func(ev release.Event) {
		t.Logf("%-14s %-9s %5.1fs %s", ev.Release, ev.Step, ev.Elapsed.Seconds(), ev.Message)
		steps = append(steps, ev.Step)
		stopped := func(when string) {
			for name, want := range map[string]string{owner: "2", owner + "-cache": "1"} {
				var replicas int32
				var ann string
				if name == owner {
					d := f.deployment(name)
					replicas, ann = *d.Spec.Replicas, d.Annotations[restore.AnnotationReplicas]
				} else {
					s := f.statefulSet(name)
					replicas, ann = *s.Spec.Replicas, s.Annotations[restore.AnnotationReplicas]
				}
				if replicas != 0 || ann != want {
					t.Errorf("%s: %s has %d replicas, annotation %q; want 0 and %q recorded", when, name, replicas, ann, want)
				}
				if left := f.pods(map[string]string{"app.kubernetes.io/name": name}); len(left) > 0 {
					t.Errorf("%s: pods of %s left: %v", when, name, left)
				}
			}
			_, err := controller.Acquire(t.Context())
			var locked *release.LockedError
			if !errors.As(err, &locked) {
				t.Errorf("%s: another process took the workplace Lease: %v, want a *release.LockedError", when, err)
			}
		}
		switch ev.Step {
		case "stopped":
			sawStopped = true
			restoreJobs, err := cs.BatchV1().Jobs(f.ns).List(t.Context(), metav1.ListOptions{LabelSelector: restore.LabelRestoreOf})
			if err != nil || len(restoreJobs.Items) > 0 {
				t.Errorf("when the consumers were stopped, restore Jobs existed already: %v %d", err, len(restoreJobs.Items))
			}
			stopped("consumers reported stopped")
		case "restore":
			sawJob = true
			restoreJobs, err := cs.BatchV1().Jobs(f.ns).List(t.Context(), metav1.ListOptions{LabelSelector: restore.LabelRestoreOf + "=" + job})
			if err != nil || len(restoreJobs.Items) != 1 {
				t.Errorf("restore Job reported created: %v, %d Jobs", err, len(restoreJobs.Items))
			}
			stopped("restore Job created")
		}
	}
	start := time.Now()
	res, err := restore.Restore(t.Context(), f.kc, restore.Options{Namespace: f.ns, Workplace: workplace, Backup: file,
		Timeout: time.Minute, PollInterval: 100 * time.Millisecond, Holder: release.Holder("platzwart-cli"), Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore took %s; steps %v", time.Since(start).Round(10*time.Millisecond), steps)
	if !sawStopped || !sawJob {
		t.Fatalf("steps %v: want stopped and restore", steps)
	}
	if res.Backup.Job != job {
		t.Errorf("restored backup %s, want %s (named by its file %s)", res.Backup.Job, job, file)
	}
	want := []restore.Consumer{{Kind: "Deployment", Name: owner, Replicas: 2}, {Kind: "StatefulSet", Name: owner + "-cache", Replicas: 1}}
	if !slices.Equal(res.Consumers, want) {
		t.Errorf("consumers %v, want %v", res.Consumers, want)
	}

	rj, err := cs.BatchV1().Jobs(f.ns).Get(t.Context(), res.Job, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rj.Name, "demo-restore-keycloak-") || rj.Labels[restore.LabelRestoreOf] != job || rj.Labels[release.LabelWorkplace] != workplace ||
		rj.Labels["app.kubernetes.io/instance"] != server {
		t.Errorf("restore Job %s labels %v", rj.Name, rj.Labels)
	}
	pod := rj.Spec.Template.Spec
	c := pod.Containers[0]
	if c.Image != serverImage || !slices.Equal(c.Command, []string{"/bin/sh", "/scripts/restore.sh"}) {
		t.Errorf("restore container image %s command %v, want the server's image running restore.sh", c.Image, c.Command)
	}
	env := map[string]corev1.EnvVar{}
	for _, v := range c.Env {
		env[v.Name] = v
	}
	for name, want := range map[string]string{"RESTORE_FILE": "/backups/" + file, "RESTORE_DATABASE": database, "PGHOST": server, "PGUSER": "postgres"} {
		if env[name].Value != want {
			t.Errorf("env %s=%q, want %q", name, env[name].Value, want)
		}
	}
	if pw := env["PGPASSWORD"]; pw.Value != "" || pw.ValueFrom == nil || pw.ValueFrom.SecretKeyRef == nil || pw.ValueFrom.SecretKeyRef.Name != server+"-admin" {
		t.Errorf("PGPASSWORD %+v: want a reference to the superuser Secret, never a value", pw)
	}
	if data, _ := json.Marshal(rj); strings.Contains(string(data), superuserPassword) {
		t.Error("the restore Job carries the superuser password")
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || *sc.RunAsUser != 999 ||
		c.SecurityContext == nil || !*c.SecurityContext.ReadOnlyRootFilesystem || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("security context %+v / %+v", pod.SecurityContext, c.SecurityContext)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	if v := volumes["scripts"]; v.ConfigMap == nil || v.ConfigMap.Name != server+"-backup" {
		t.Errorf("scripts volume %+v", v)
	}
	if v := volumes["backups"]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "demo-backups" {
		t.Errorf("backups volume %+v", v)
	}
	if v := volumes["tmp"]; v.EmptyDir == nil {
		t.Errorf("tmp volume %+v", v)
	}

	if d := f.deployment(owner); *d.Spec.Replicas != 2 || d.Status.AvailableReplicas != 2 || d.Annotations[restore.AnnotationReplicas] != "" {
		t.Errorf("after the restore %s has %d replicas (%d available), annotation %q; want 2, 2 and none", owner, *d.Spec.Replicas, d.Status.AvailableReplicas, d.Annotations[restore.AnnotationReplicas])
	}
	if s := f.statefulSet(owner + "-cache"); *s.Spec.Replicas != 1 || s.Status.ReadyReplicas != 1 || s.Annotations[restore.AnnotationReplicas] != "" {
		t.Errorf("after the restore the StatefulSet has %d replicas (%d ready), annotation %q", *s.Spec.Replicas, s.Status.ReadyReplicas, s.Annotations[restore.AnnotationReplicas])
	}
	if d := f.deployment("demo-nextcloud"); d.Generation != other0.Generation || *d.Spec.Replicas != 1 {
		t.Errorf("another release's Deployment changed: generation %d → %d", other0.Generation, d.Generation)
	}
	if s := f.statefulSet(server); s.Generation != server0.Generation || *s.Spec.Replicas != 1 {
		t.Errorf("the server's StatefulSet changed: generation %d → %d", server0.Generation, s.Generation)
	}
	if _, err := cs.CoordinationV1().Leases(f.ns).Get(t.Context(), release.LeaseName(workplace), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the workplace Lease after the restore: %v, want it released (deleted)", err)
	}
	if _, err := controller.Acquire(t.Context()); err != nil {
		t.Errorf("the controller cannot take the Lease after the restore: %v", err)
	}
	if err := controller.Release(t.Context()); err != nil {
		t.Error(err)
	}
}

// TestRestoreJobFails: the restore Job's pod exits 1. The error names the Job and the
// command to read its logs and says the database is as it was; the consumers are back
// with their replicas and the Lease is released.
func TestRestoreJobFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job, _ := f.completeBackup(owner, database, "26.7.4", time.Now())
	f.c.FailJobPods(t, f.ns, "demo-restore-")
	res, err := restore.Restore(t.Context(), f.kc, restore.Options{Namespace: f.ns, Backup: job, Timeout: time.Minute,
		PollInterval: 100 * time.Millisecond, Holder: release.Holder("platzwart-cli"),
		Progress: func(ev release.Event) { t.Logf("%-9s %5.1fs %s", ev.Step, ev.Elapsed.Seconds(), ev.Message) }})
	var failed *restore.JobFailedError
	if !errors.As(err, &failed) {
		t.Fatalf("restore with a failing Job: %v, want a *restore.JobFailedError", err)
	}
	t.Logf("error: %v", err)
	if res == nil || res.Job == "" || failed.Job != res.Job {
		t.Fatalf("result %+v, error for Job %q", res, failed.Job)
	}
	for _, want := range []string{res.Job, fmt.Sprintf("kubectl -n %s logs job/%s", f.ns, res.Job), "database keycloak is as it was"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if d := f.deployment(owner); *d.Spec.Replicas != 2 || d.Status.AvailableReplicas != 2 || d.Annotations[restore.AnnotationReplicas] != "" {
		t.Errorf("after the failed restore %s has %d replicas (%d available), annotation %q; want 2, 2 and none", owner, *d.Spec.Replicas, d.Status.AvailableReplicas, d.Annotations[restore.AnnotationReplicas])
	}
	if s := f.statefulSet(owner + "-cache"); *s.Spec.Replicas != 1 || s.Annotations[restore.AnnotationReplicas] != "" {
		t.Errorf("after the failed restore the StatefulSet has %d replicas, annotation %q", *s.Spec.Replicas, s.Annotations[restore.AnnotationReplicas])
	}
	if _, err := f.kc.Clientset.CoordinationV1().Leases(f.ns).Get(t.Context(), release.LeaseName(workplace), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the workplace Lease after the failed restore: %v, want it released", err)
	}
}

// TestRestoreRefusesWritingNothing: an unknown backup, a failed or running one, one
// whose record names another file, one whose release is not the workplace's, one
// whose database is not its release's, and a server without restore.sh are refused
// with a reason, and nothing is written (not even the Lease).
func TestRestoreRefusesWritingNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.c.FailJobPods(t, f.ns, "demo-synapse-backup-")
	t0 := time.Now()
	good, _ := f.completeBackup(owner, database, "26.7.4", t0)
	failed, _ := f.backupJob("demo-synapse", "synapse", "1.140.0", t0)
	f.waitJob(failed, batchv1.JobFailed)
	running, _ := f.backupJob(owner, database, "26.8.0", t0.Add(time.Minute), func(j *batchv1.Job) {
		j.Spec.Template.Spec.NodeSelector = map[string]string{"platzwart.io/test": "no-such-node"}
	})
	badRecord, _ := f.completeBackup(owner, database, "26.7.5", t0.Add(2*time.Minute))
	f.setRecord(badRecord, record("keycloak-before-1.0.0-20200101t000000.dump", 10))
	foreign, _ := f.completeBackup("demo-matrix", "matrix", "1.0.0", t0.Add(3*time.Minute))
	notOwned, _ := f.completeBackup("demo-nextcloud", database, "33.0.7", t0.Add(4*time.Minute))

	f.writes.Reset()
	for _, c := range []struct{ backup, want string }{
		{"demo-keycloak-backup-keycloak-nosuch", `no backup "demo-keycloak-backup-keycloak-nosuch"`},
		{failed, "the Job is Failed"},
		{running, "the Job is Running"},
		{badRecord, "its pod reported keycloak-before-1.0.0-20200101t000000.dump"},
		{foreign, "release demo-matrix is not a release of workplace"},
		{notOwned, "database keycloak is not a database of release demo-nextcloud"},
	} {
		_, err := restore.Restore(t.Context(), f.kc, restore.Options{Namespace: f.ns, Workplace: workplace, Backup: c.backup, Timeout: time.Minute})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "nothing was changed") {
			t.Errorf("restore %s: %v, want a refusal saying %q and that nothing was changed", c.backup, err, c.want)
		}
	}
	var unknown *restore.UnknownBackupError
	if _, err := restore.Restore(t.Context(), f.kc, restore.Options{Namespace: f.ns, Backup: "nosuch.dump"}); !errors.As(err, &unknown) || !slices.Contains(unknown.Known, good) {
		t.Errorf("unknown backup: %v, want a *restore.UnknownBackupError listing %s", err, good)
	}
	// The server's chart predates restore.sh.
	if _, err := f.kc.Clientset.CoreV1().ConfigMaps(f.ns).Update(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: server + "-backup"},
		Data: map[string]string{"backup.sh": "exit 0\n"}}, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.writes.Reset()
	if _, err := restore.Restore(t.Context(), f.kc, restore.Options{Namespace: f.ns, Backup: good}); err == nil || !strings.Contains(err.Error(), "has no restore.sh") {
		t.Errorf("restore without restore.sh: %v, want a refusal", err)
	}
	if got := f.writes.List(); len(got) > 0 {
		t.Errorf("refused restores wrote: %v", got)
	}
}

// TestRestoreFinishesAnInterruptedRestore: a restore that ended after stopping the
// consumers (killed) left keycloak's Deployment at 0 with its replicas recorded.
// While a restore Job of another backup still runs, a restore is refused and leaves
// the consumers as they are. Run again, it keeps the recorded replicas (not the 0 it
// finds), restores and brings the Deployment back to 2.
func TestRestoreFinishesAnInterruptedRestore(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job, _ := f.completeBackup(owner, database, "26.7.4", time.Now())
	cs := f.kc.Clientset
	d := f.deployment(owner)
	d.Annotations[restore.AnnotationReplicas] = "2"
	d.Spec.Replicas = new(int32)
	if _, err := cs.AppsV1().Deployments(f.ns).Update(t.Context(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A restore Job of another backup, still running (its pod cannot be scheduled).
	busy := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "demo-restore-keycloak-busy", Labels: map[string]string{
		restore.LabelRestoreOf: "demo-keycloak-backup-keycloak-older", release.LabelWorkplace: workplace}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			NodeSelector: map[string]string{"platzwart.io/test": "no-such-node"},
			Containers:   []corev1.Container{{Name: "restore", Image: serverImage}}}}}}
	if _, err := cs.BatchV1().Jobs(f.ns).Create(t.Context(), busy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	opts := restore.Options{Namespace: f.ns, Backup: job, Timeout: time.Minute, PollInterval: 100 * time.Millisecond, Holder: release.Holder("platzwart-cli")}
	_, err := restore.Restore(t.Context(), f.kc, opts)
	if err == nil || !strings.Contains(err.Error(), "restore Job demo-restore-keycloak-busy") {
		t.Fatalf("restore while another restore Job runs: %v, want a refusal naming it", err)
	}
	if d := f.deployment(owner); *d.Spec.Replicas != 0 || d.Annotations[restore.AnnotationReplicas] != "2" {
		t.Errorf("the refusal changed the stopped Deployment: %d replicas, annotation %q", *d.Spec.Replicas, d.Annotations[restore.AnnotationReplicas])
	}
	if err := cs.BatchV1().Jobs(f.ns).Delete(t.Context(), busy.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	res, err := restore.Restore(t.Context(), f.kc, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Consumers, restore.Consumer{Kind: "Deployment", Name: owner, Replicas: 2}) {
		t.Errorf("consumers %v: want the Deployment with its recorded 2 replicas", res.Consumers)
	}
	if d := f.deployment(owner); *d.Spec.Replicas != 2 || d.Status.AvailableReplicas != 2 || d.Annotations[restore.AnnotationReplicas] != "" {
		t.Errorf("after finishing, %s has %d replicas (%d available), annotation %q; want 2, 2 and none", owner, *d.Spec.Replicas, d.Status.AvailableReplicas, d.Annotations[restore.AnnotationReplicas])
	}
}

// TestRestoreStopSignal: a stop signal (Ctrl-C, SIGTERM) once the consumers are
// stopped ends the restore before its Job is created, with the consumers back; a stop
// signal once the Job exists lets it run to its end, and the restore finishes.
func TestRestoreStopSignal(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job, _ := f.completeBackup(owner, database, "26.7.4", time.Now())
	for _, at := range []string{"stopped", "restore"} {
		ctx, cancel := context.WithCancel(t.Context())
		res, err := restore.Restore(ctx, f.kc, restore.Options{Namespace: f.ns, Backup: job, Timeout: time.Minute,
			PollInterval: 100 * time.Millisecond, Holder: release.Holder("platzwart-cli"), Progress: func(ev release.Event) {
				t.Logf("%-9s %5.1fs %s", ev.Step, ev.Elapsed.Seconds(), ev.Message)
				if ev.Step == at {
					cancel()
				}
			}})
		cancel()
		jobs, lerr := f.kc.Clientset.BatchV1().Jobs(f.ns).List(t.Context(), metav1.ListOptions{LabelSelector: restore.LabelRestoreOf})
		if lerr != nil {
			t.Fatal(lerr)
		}
		switch at {
		case "stopped":
			if err == nil || !strings.Contains(err.Error(), "nothing was restored") || len(jobs.Items) != 0 {
				t.Errorf("stopped before the Job: %v, %d restore Jobs; want an error saying nothing was restored, and no Job", err, len(jobs.Items))
			}
		case "restore":
			if err != nil || res == nil || len(jobs.Items) != 1 {
				t.Errorf("stopped once the Job existed: %v, %d restore Jobs; want the restore finished", err, len(jobs.Items))
			}
		}
		if d := f.deployment(owner); *d.Spec.Replicas != 2 || d.Annotations[restore.AnnotationReplicas] != "" {
			t.Errorf("stopped at %s: %s has %d replicas, annotation %q; want 2 and none", at, owner, *d.Spec.Replicas, d.Annotations[restore.AnnotationReplicas])
		}
		if _, err := f.kc.Clientset.CoordinationV1().Leases(f.ns).Get(t.Context(), release.LeaseName(workplace), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("stopped at %s: the workplace Lease: %v, want it released", at, err)
		}
	}
}
