package restore_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/rclone"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/restore"
)

const (
	s3Credentials = "backup-s3"
	s3CA          = "backup-s3-ca"
	// s3SecretKey is the value of the credentials Secret's secretAccessKey: it must
	// appear in no Job and no output.
	s3SecretKey = "s3-Secret-never-printed-0123456789"
)

// s3BackupJob creates the engine's backup Job for keycloak's database with an S3
// target (release.BackupJob, from the fixture's server StatefulSet), waits until kwok
// completed it and writes backup.sh's record to its init container's termination
// message. It returns the Job and the backup the engine records.
func (f *fixture) s3BackupJob(at time.Time) (*batchv1.Job, release.Backup) {
	f.t.Helper()
	rel := &plan.Release{Name: owner, Workplace: workplace, Namespace: f.ns, Version: "26.7.4", Timeout: time.Minute,
		Backups: catalog.Backups{Size: "1Gi", S3: &catalog.S3Backups{Endpoint: "https://s3.example.org", Bucket: "backups",
			Prefix: f.ns + "/" + workplace, CredentialsSecret: s3Credentials, CASecret: &v1alpha1.SecretKeyRef{Name: s3CA, Key: "ca.crt"}}}}
	job, b, err := release.BackupJob(rel, plan.Database{Name: database, Server: server}, f.statefulSet(server), at)
	if err != nil {
		f.t.Fatal(err)
	}
	// As stored, with the API server's defaults.
	if job, err = f.kc.Clientset.BatchV1().Jobs(f.ns).Create(f.t.Context(), job, metav1.CreateOptions{}); err != nil {
		f.t.Fatal(err)
	}
	f.waitJob(job.Name, batchv1.JobComplete)
	pods, err := f.kc.Clientset.CoreV1().Pods(f.ns).List(f.t.Context(), metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job.Name})
	if err != nil || len(pods.Items) != 1 {
		f.t.Fatalf("pods of Job %s: %v (%d)", job.Name, err, len(pods.Items))
	}
	p := pods.Items[0]
	p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "backup", Image: serverImage, State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", Message: record(b.File, 98765), StartedAt: metav1.Now(), FinishedAt: metav1.Now()}}}}
	if _, err := f.kc.Clientset.CoreV1().Pods(f.ns).UpdateStatus(f.t.Context(), &p, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
	return job, b
}

// TestRestoreFromS3: a backup the engine sent to S3 (on this control plane kwok
// completes its pod without running a container: the transfer itself is tested
// against a real S3 server in reconciler/backup TestBackupToS3AndRestore) is listed
// with its object as location and the record of its init container. A restore is
// refused, writing nothing, while the Secret the download needs is missing; then it
// runs a Job whose init container downloads the object with the backup's upload
// settings (the rclone image, the same environment of Secret references, the CA
// volume) onto a scratch volume like the backup's, and whose restore.sh reads the
// dump there; no claim is used and no secret value is in the Job.
func TestRestoreFromS3(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	job, b := f.s3BackupJob(time.Now())
	cs := f.kc.Clientset

	list, err := restore.List(t.Context(), cs, f.ns, workplace)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("listed %d backups, want 1", len(list))
	}
	got := list[0]
	if o := got.Location.S3; o == nil || *o != *b.Location.S3 || got.Claim != "" || got.Location.Claim != "" ||
		o.Key != f.ns+"/"+workplace+"/"+got.File || got.State != restore.StateComplete {
		t.Errorf("listed %+v, want complete, in %s and no claim", got, b.Location)
	}
	if got.Record == nil || got.Record.Bytes != 98765 || got.Record.File != b.File {
		t.Errorf("record %+v, want the init container's termination message", got.Record)
	}

	f.writes.Reset()
	_, err = restore.Restore(t.Context(), f.kc, restore.Options{Namespace: f.ns, Workplace: workplace, Backup: job.Name, Timeout: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "Secret "+s3Credentials) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("restore without the credentials Secret: %v, want a refusal naming it", err)
	}
	if w := f.writes.List(); len(w) > 0 {
		t.Errorf("the refused restore wrote: %v", w)
	}
	for name, data := range map[string]map[string]string{
		s3Credentials: {rclone.AccessKeyIDKey: "backup-key", rclone.SecretAccessKeyKey: s3SecretKey},
		s3CA:          {"ca.crt": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"},
	} {
		if _, err := cs.CoreV1().Secrets(f.ns).Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	var messages []string
	res, err := restore.Restore(t.Context(), f.kc, restore.Options{Namespace: f.ns, Workplace: workplace, Backup: b.File, Timeout: time.Minute,
		PollInterval: 100 * time.Millisecond, Holder: release.Holder("platzwart-cli"),
		Progress: func(ev release.Event) { messages = append(messages, ev.Message) }})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(messages, func(m string) bool { return strings.Contains(m, "downloads "+b.Location.S3.String()) }) {
		t.Errorf("progress %q does not say the object is downloaded", messages)
	}
	rj, err := cs.BatchV1().Jobs(f.ns).Get(t.Context(), res.Job, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	backupPod, pod := job.Spec.Template.Spec, rj.Spec.Template.Spec
	var upload corev1.Container
	for _, c := range backupPod.Containers {
		if c.Name == rclone.UploadContainer {
			upload = c
		}
	}
	if len(pod.InitContainers) != 1 {
		t.Fatalf("restore Job init containers %d, want download", len(pod.InitContainers))
	}
	d := pod.InitContainers[0]
	wantCmd := []string{"rclone", "copyto", "--config=/dev/null", "--verbose", ":s3:backups/" + b.Location.S3.Key, "/backups/" + b.File}
	if d.Name != rclone.DownloadContainer || d.Image != rclone.Image || !slices.Equal(d.Command, wantCmd) {
		t.Errorf("download container %s image %s command %q, want %s running %q", d.Name, d.Image, d.Command, rclone.Image, wantCmd)
	}
	if !apiequality.Semantic.DeepEqual(d.Env, upload.Env) {
		t.Errorf("download environment %+v, want the upload's %+v", d.Env, upload.Env)
	}
	for _, v := range d.Env {
		if strings.Contains(v.Name, "KEY") && (v.Value != "" || v.ValueFrom == nil || v.ValueFrom.SecretKeyRef == nil || v.ValueFrom.SecretKeyRef.Name != s3Credentials) {
			t.Errorf("env %s: %+v, want a reference to Secret %s", v.Name, v, s3Credentials)
		}
	}
	if sc := d.SecurityContext; sc == nil || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("download security context %+v", sc)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		if v.PersistentVolumeClaim != nil {
			t.Errorf("restore Job volume %s uses claim %s: an S3 backup needs none", v.Name, v.PersistentVolumeClaim.ClaimName)
		}
	}
	for _, v := range backupPod.Volumes {
		if (v.Name == "backups" || v.Name == "s3-ca") && !apiequality.Semantic.DeepEqual(volumes[v.Name], v) {
			t.Errorf("restore Job volume %s %+v, want the backup Job's %+v", v.Name, volumes[v.Name], v)
		}
	}
	if e := volumes["backups"].Ephemeral; e == nil || e.VolumeClaimTemplate.Spec.Resources.Requests.Storage().String() != "1Gi" {
		t.Errorf("scratch volume %+v, want an ephemeral volume of the profile's 1Gi", volumes["backups"])
	}
	c := pod.Containers[0]
	env := map[string]string{}
	for _, v := range c.Env {
		env[v.Name] = v.Value
	}
	if c.Name != "restore" || env["RESTORE_FILE"] != "/backups/"+b.File || !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == "backups" && m.MountPath == "/backups" && m.ReadOnly
	}) {
		t.Errorf("restore container %s env %v mounts %+v, want restore.sh reading /backups/%s", c.Name, env, c.VolumeMounts, b.File)
	}
	if data, _ := json.Marshal(rj); strings.Contains(string(data), s3SecretKey) || strings.Contains(string(data), superuserPassword) {
		t.Error("the restore Job carries a secret value")
	}
	if d := f.deployment(owner); *d.Spec.Replicas != 2 || d.Annotations[restore.AnnotationReplicas] != "" {
		t.Errorf("after the restore %s has %d replicas, annotation %q", owner, *d.Spec.Replicas, d.Annotations[restore.AnnotationReplicas])
	}
}
