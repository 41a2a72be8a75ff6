package reconciler_test

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/rclone"
	"github.com/platzwart/platzwart/reconciler/release"
)

// TestVersionPathBacksUpToS3 takes the steps component's path with a profile that
// sends backups to S3 (spec.backups.s3). While the credentials Secret is missing, the
// backup before the risky step is refused naming it and the path stops before that
// step. With the Secret, the backup Job runs backup.sh from the server's image in its
// init container and the rclone image in its container "upload", with the
// credentials as Secret references only and the dump on an ephemeral scratch volume;
// no backup claim is created; the outcome and the progress name the object
// s3://<bucket>/<namespace>/<workplace>/<file>. On this control plane kwok completes
// the pod without running a container: the transfer itself is tested against a real
// S3 server in reconciler/backup TestBackupToS3AndRestore.
func TestVersionPathBacksUpToS3(t *testing.T) {
	e := newEnv(t)
	files := stepsComponent(t)
	files["profiles/s3.yaml"] = `apiVersion: platzwart.io/v1alpha1
kind: Profile
metadata: {name: s3}
spec:
  extends: minikube
  backups:
    size: 1Gi
    s3:
      endpoint: https://s3.example.org
      bucket: platzwart-backups
      credentialsSecret: backup-s3
`
	office := map[string]string{"office: collabora": "office: steps", "profile: minikube": "profile: s3"}
	pinned := map[string]string{"office: collabora": "office: steps", "profile: minikube": "profile: s3",
		"  dataPolicy: Retain\n": "  dataPolicy: Retain\n  versions: {steps: 1.0.0}\n"}
	e.reconcile(e.plan(e.workplaceDir(pinned, files)))

	rep := e.reconcileMayFail(e.plan(e.workplaceDir(office, files)))
	var failed string
	for _, o := range rep.Result.Outcomes {
		if o.Component == "steps" && o.Err != "" {
			failed = o.Err
		}
	}
	if !strings.Contains(failed, "Secret "+e.ns+"/backup-s3") || !strings.Contains(failed, "spec.backups.s3.credentialsSecret") {
		t.Fatalf("the path without the credentials Secret: %q, want the backup refused naming the Secret", failed)
	}
	if got := e.versionLabel("demo-steps"); got != "1.0.0" {
		t.Fatalf("version after the refused backup: %q, want 1.0.0 (no step without its backup)", got)
	}

	if _, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "backup-s3"},
		StringData: map[string]string{rclone.AccessKeyIDKey: "backup-key", rclone.SecretAccessKeyKey: "s3-Secret-never-in-a-Job-42"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.events.reset()
	rep = e.reconcile(e.plan(e.workplaceDir(office, files)))
	if got := e.versionLabel("demo-steps"); got != "3.0.0" {
		t.Fatalf("version after the path: %q, want 3.0.0", got)
	}
	var backups []release.Backup
	for _, o := range rep.Result.Outcomes {
		if o.Component == "steps" {
			backups = o.Backups
		}
	}
	if len(backups) != 1 {
		t.Fatalf("backups %+v, want one before 2.0.0", backups)
	}
	b := backups[0]
	want := v1alpha1.S3Object{Endpoint: "https://s3.example.org", Bucket: "platzwart-backups", Key: e.ns + "/demo/" + b.File}
	if b.Location.S3 == nil || *b.Location.S3 != want || b.Claim != "" || b.Version != "2.0.0" {
		t.Fatalf("backup %+v, want it in %s and on no claim", b, want)
	}
	if e.events.indexOf("demo-steps", "backup", "database steps: "+b.File+" in "+want.String()) < 0 {
		t.Errorf("no progress event naming %s", want)
	}
	if _, err := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(e.ns).Get(t.Context(), release.BackupClaim("demo"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the backup claim: %v, want none with an S3 target", err)
	}

	job, err := e.cluster.Clientset.BatchV1().Jobs(e.ns).Get(t.Context(), b.Job, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sts, err := e.cluster.Clientset.AppsV1().StatefulSets(e.ns).Get(t.Context(), "demo-postgresql", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template.Spec
	if len(pod.InitContainers) != 1 || pod.InitContainers[0].Name != "backup" || len(pod.Containers) != 1 || pod.Containers[0].Name != rclone.UploadContainer {
		t.Fatalf("backup Job: init containers %d, containers %d; want backup, then upload", len(pod.InitContainers), len(pod.Containers))
	}
	if img := pod.InitContainers[0].Image; img != sts.Spec.Template.Spec.Containers[0].Image {
		t.Errorf("backup image %s, want the server's", img)
	}
	up := pod.Containers[0]
	if up.Image != rclone.Image || len(up.Command) < 2 || up.Command[len(up.Command)-1] != ":s3:platzwart-backups/"+want.Key {
		t.Errorf("upload container image %s command %q, want %s copying to :s3:platzwart-backups/%s", up.Image, up.Command, rclone.Image, want.Key)
	}
	refs := 0
	for _, v := range up.Env {
		if strings.HasSuffix(v.Name, "_KEY_ID") || strings.HasSuffix(v.Name, "_ACCESS_KEY") {
			if v.Value != "" || v.ValueFrom == nil || v.ValueFrom.SecretKeyRef == nil || v.ValueFrom.SecretKeyRef.Name != "backup-s3" {
				t.Errorf("env %s %+v, want a reference to Secret backup-s3", v.Name, v)
			}
			refs++
		}
	}
	if refs != 2 {
		t.Errorf("%d credential references in the upload's environment, want 2", refs)
	}
	if data, _ := json.Marshal(job); strings.Contains(string(data), "s3-Secret-never-in-a-Job-42") {
		t.Error("the backup Job carries the secret access key")
	}
	for _, v := range pod.Volumes {
		if v.Name == "backups" && (v.Ephemeral == nil || v.Ephemeral.VolumeClaimTemplate.Spec.Resources.Requests.Storage().String() != "1Gi") {
			t.Errorf("scratch volume %+v, want an ephemeral volume of the profile's 1Gi", v)
		}
		if v.PersistentVolumeClaim != nil {
			t.Errorf("volume %s uses claim %s", v.Name, v.PersistentVolumeClaim.ClaimName)
		}
	}
	var loc v1alpha1.BackupLocation
	if err := json.Unmarshal([]byte(job.Spec.Template.Annotations[release.AnnotationBackupLocation]), &loc); err != nil || loc.S3 == nil || *loc.S3 != want {
		t.Errorf("location annotation %q (%v), want %s", job.Spec.Template.Annotations[release.AnnotationBackupLocation], err, want)
	}
}
