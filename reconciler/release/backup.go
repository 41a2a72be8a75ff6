package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/backup"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/rclone"
)

// Backup is one database dumped before a risky upgrade step.
type Backup struct {
	// Database and Server (the PostgreSQL release) it was dumped from.
	Database string `json:"database"`
	Server   string `json:"server"`
	// Version is the component version the step upgrades to.
	Version string `json:"version"`
	// Claim is the PersistentVolumeClaim holding the dump ("" when it went to S3),
	// File the dump's name.
	Claim string `json:"claim,omitempty"`
	File  string `json:"file"`
	// Location is where the dump is kept: the claim, or an object in a bucket.
	Location v1alpha1.BackupLocation `json:"location"`
	// Job ran the server chart's backup.sh.
	Job string `json:"job"`
	// Bytes and SHA256 of the verified dump, from the record backup.sh writes to the
	// container's termination message (0 and "" when the pod reported none, as on a
	// control plane whose nodes run no containers).
	Bytes  int64  `json:"bytes,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Finished is when the Job completed.
	Finished time.Time `json:"finished"`
}

const (
	// LabelBackupOf names, on a backup Job, the release it was taken for.
	LabelBackupOf = "platzwart.io/backup-of"
	// defaultBackupSize is the size of a workplace's backup claim when it is created.
	defaultBackupSize = "10Gi"
	// AnnotationBackupLocation records, on a backup Job's pod template, where the
	// dump goes: a v1alpha1.BackupLocation in JSON.
	AnnotationBackupLocation = "platzwart.io/backup-location"
	// backupContainer runs backup.sh; backupsVolume holds the dump, at backupDir.
	backupContainer = "backup"
	backupsVolume   = "backups"
	backupDir       = "/backups"
)

// BackupClaim is the name of the PersistentVolumeClaim a workplace's backups go to.
// It belongs to no Helm release, so no uninstall removes it.
func BackupClaim(workplace string) string { return workplace + "-backups" }

// backupNeeded reports whether upgrading from the deployed version to step needs a
// backup first: the step reaches a risky version it was not at already, and the
// component has databases on the workplace's PostgreSQL. An upgrade that keeps the
// version (values, chart or Secret changes) takes none. An unrecorded deployed
// version ("", a release from before versions were recorded) may be older, so it
// takes one.
func backupNeeded(deployed string, step *plan.Release) bool {
	if !step.Risky || len(step.Databases) == 0 {
		return false
	}
	if deployed == "" {
		return true
	}
	dv, err1 := catalog.ParseVersion(deployed)
	sv, err2 := catalog.ParseVersion(step.Version)
	if err1 != nil || err2 != nil {
		return deployed != step.Version
	}
	return !dv.Equal(sv)
}

// backupBefore dumps every database of rel (one Job per database, the PostgreSQL
// server chart's backup.sh: a custom-format dump verified by reading it back) before
// the risky step to rel.Version, and waits until each Job completed. A backup that
// fails stops the step: nothing is upgraded without its backup.
func (e *Engine) backupBefore(ctx, wctx context.Context, s Step, rel *plan.Release, start time.Time) ([]Backup, error) {
	if err := e.ensureBackupClaim(wctx, rel); err != nil {
		return nil, err
	}
	if err := e.checkS3Secrets(wctx, rel); err != nil {
		return nil, err
	}
	var out []Backup
	for _, db := range rel.Databases {
		b, err := e.backup(ctx, wctx, s, rel, db, start)
		if err != nil {
			return out, fmt.Errorf("backup of database %s before version %s: %w", db.Name, rel.Version, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// ensureBackupClaim creates the workplace's backup claim when it is missing; with an
// S3 target there is none.
func (e *Engine) ensureBackupClaim(ctx context.Context, rel *plan.Release) error {
	if rel.Backups.S3 != nil {
		return nil
	}
	name := BackupClaim(rel.Workplace)
	pvcs := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(rel.Namespace)
	if _, err := pvcs.Get(ctx, name, metav1.GetOptions{}); err == nil || !apierrors.IsNotFound(err) {
		return err
	}
	size := defaultBackupSize
	if rel.Backups.Size != "" {
		size = rel.Backups.Size
	}
	q, err := resource.ParseQuantity(size)
	if err != nil {
		return fmt.Errorf("backup claim %s/%s: size %q: %w", rel.Namespace, name, size, err)
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: rel.Namespace,
			Labels: map[string]string{LabelWorkplace: rel.Workplace, "app.kubernetes.io/managed-by": "platzwart"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q}},
		},
	}
	if rel.Backups.StorageClassName != "" {
		pvc.Spec.StorageClassName = ptr.To(rel.Backups.StorageClassName)
	}
	if _, err := pvcs.Create(ctx, pvc, metav1.CreateOptions{FieldManager: "platzwart"}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create the backup claim %s/%s: %w", rel.Namespace, name, err)
	}
	return nil
}

// checkS3Secrets refuses an S3 backup whose credentials or CA Secret is missing from
// the workplace's namespace (its pod would wait for it until the Job's deadline). It
// reads the Secrets' metadata only.
func (e *Engine) checkS3Secrets(ctx context.Context, rel *plan.Release) error {
	t := rel.Backups.S3
	if t == nil {
		return nil
	}
	type ref struct{ name, field, how string }
	refs := []ref{{t.CredentialsSecret, "credentialsSecret", fmt.Sprintf("kubectl -n %s create secret generic %s --from-literal=%s=... --from-literal=%s=...",
		rel.Namespace, t.CredentialsSecret, rclone.AccessKeyIDKey, rclone.SecretAccessKeyKey)}}
	if t.CASecret != nil {
		refs = append(refs, ref{t.CASecret.Name, "caSecret", fmt.Sprintf("a Secret with the endpoint's CA certificate in key %s", t.CASecret.Key)})
	}
	for _, r := range refs {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		err := e.cluster.Client.Get(ctx, client.ObjectKey{Namespace: rel.Namespace, Name: r.name}, m)
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("the Secret %s/%s that the profile's spec.backups.s3.%s names does not exist (%s); nothing was backed up", rel.Namespace, r.name, r.field, r.how)
		}
		if err != nil {
			return fmt.Errorf("the Secret %s/%s of spec.backups.s3.%s: %w", rel.Namespace, r.name, r.field, err)
		}
	}
	return nil
}

// backup runs backup.sh for one database in a Job built by BackupJob and waits until
// it completed.
func (e *Engine) backup(ctx, wctx context.Context, s Step, rel *plan.Release, db plan.Database, start time.Time) (Backup, error) {
	sts, err := e.cluster.Clientset.AppsV1().StatefulSets(rel.Namespace).Get(wctx, db.Server, metav1.GetOptions{})
	if err != nil {
		return Backup{}, fmt.Errorf("the PostgreSQL server %s: %w", db.Server, err)
	}
	job, b, err := BackupJob(rel, db, sts, time.Now())
	if err != nil {
		return Backup{}, err
	}
	name := job.Name
	e.progress(s.Release, "backup", time.Since(start), fmt.Sprintf("database %s before version %s: Job %s", db.Name, rel.Version, name))
	jobs := e.cluster.Clientset.BatchV1().Jobs(rel.Namespace)
	if _, err := jobs.Create(wctx, job, metav1.CreateOptions{FieldManager: "platzwart"}); err != nil {
		return Backup{}, fmt.Errorf("create Job %s: %w", name, err)
	}
	finished, err := e.waitJob(ctx, rel.Namespace, name, rel.Timeout)
	if err != nil {
		var failed *jobFailedError
		if errors.As(err, &failed) {
			return Backup{}, fmt.Errorf("backup Job %s: %s (kubectl -n %s logs job/%s --all-containers)%s", name, failed.reason, rel.Namespace, name, e.claimHint(wctx, rel, name))
		}
		return Backup{}, err
	}
	b.Finished = finished
	if rec, ok := e.backupRecord(wctx, rel.Namespace, name); ok {
		if rec.File != b.File || rec.Database != db.Name {
			return Backup{}, fmt.Errorf("backup Job %s reported %s of database %s, want %s of %s", name, rec.File, rec.Database, b.File, db.Name)
		}
		b.Bytes, b.SHA256 = rec.Bytes, rec.SHA256
	}
	e.progress(s.Release, "backup", time.Since(start), fmt.Sprintf("database %s: %s %s", db.Name, b.File, b.Where()))
	return b, nil
}

// Where says where the dump is kept: "on claim <name>" or "in s3://<bucket>/<key>".
func (b Backup) Where() string {
	if o := b.Location.S3; o != nil {
		return "in " + o.String()
	}
	return "on claim " + b.Claim
}

// BackupJob is the Job that dumps database db of rel before the step to rel.Version
// with the server chart's backup.sh, built from the server's own StatefulSet: its
// image (client tools of the server's major) and its superuser credentials (the same
// Secret reference, never a value). It is named after now. The Backup is what the
// Job records once it completed, without size, checksum and finish time.
//
// The dump goes to the workplace's backup claim, or, with the profile's
// spec.backups.s3, to a scratch volume (an ephemeral volume of the profile's size and
// storage class) from which the container "upload" (reconciler/rclone) copies it to
// the bucket; backup.sh then runs as the init container "backup", so nothing is
// uploaded unless the dump was verified. Either way the pod template records the
// location in the annotation AnnotationBackupLocation, and backup.sh's record goes
// to the termination message of the container "backup".
func BackupJob(rel *plan.Release, db plan.Database, sts *appsv1.StatefulSet, now time.Time) (*batchv1.Job, Backup, error) {
	var server *corev1.Container
	for i := range sts.Spec.Template.Spec.Containers {
		if c := &sts.Spec.Template.Spec.Containers[i]; c.Name == "postgresql" {
			server = c
		}
	}
	if server == nil {
		return nil, Backup{}, fmt.Errorf("StatefulSet %s has no container postgresql", db.Server)
	}
	env := []corev1.EnvVar{{Name: "PGHOST", Value: db.Server}, {Name: "PGPORT", Value: "5432"}, {Name: "PGCONNECT_TIMEOUT", Value: "10"}}
	for _, v := range server.Env {
		switch v.Name {
		case "POSTGRES_USER":
			env = append(env, corev1.EnvVar{Name: "PGUSER", Value: v.Value, ValueFrom: v.ValueFrom})
		case "POSTGRES_PASSWORD":
			env = append(env, corev1.EnvVar{Name: "PGPASSWORD", Value: v.Value, ValueFrom: v.ValueFrom})
		}
	}
	stamp := strings.ToLower(now.UTC().Format("20060102t150405"))
	name := fmt.Sprintf("%s-before-%s-%s", db.Name, rel.Version, stamp)
	file := name + ".dump"
	env = append(env,
		corev1.EnvVar{Name: "BACKUP_DATABASE", Value: db.Name},
		corev1.EnvVar{Name: "BACKUP_DIR", Value: backupDir},
		corev1.EnvVar{Name: "BACKUP_NAME", Value: name},
		corev1.EnvVar{Name: "BACKUP_RECORD_FILE", Value: corev1.TerminationMessagePathDefault})
	b := Backup{Database: db.Name, Server: db.Server, Version: rel.Version, File: file, Job: jobName(rel.Name, db.Name, stamp)}

	dump := corev1.Container{
		Name: backupContainer, Image: server.Image, ImagePullPolicy: server.ImagePullPolicy,
		Command:         []string{"/bin/sh", "/scripts/backup.sh"},
		Env:             env,
		SecurityContext: backup.ContainerSecurityContext(),
		VolumeMounts: []corev1.VolumeMount{
			{Name: "scripts", MountPath: "/scripts", ReadOnly: true},
			{Name: backupsVolume, MountPath: backupDir},
			{Name: "tmp", MountPath: "/tmp"},
		},
	}
	volumes := []corev1.Volume{
		{Name: "scripts", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: db.Server + "-backup"}}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	var initContainers, containers []corev1.Container
	if t := rel.Backups.S3; t != nil {
		scratch, err := scratchVolume(rel.Backups)
		if err != nil {
			return nil, Backup{}, fmt.Errorf("backup of database %s: %w", db.Name, err)
		}
		upload, caVolumes := rclone.Upload(*t, backupsVolume, backupDir, file)
		upload.VolumeMounts = append(upload.VolumeMounts, corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"})
		initContainers, containers = []corev1.Container{dump}, []corev1.Container{upload}
		volumes = append(append(volumes, scratch), caVolumes...)
		o := rclone.ObjectOf(*t, file)
		b.Location = v1alpha1.BackupLocation{S3: &o}
	} else {
		b.Claim = BackupClaim(rel.Workplace)
		containers = []corev1.Container{dump}
		volumes = append(volumes, corev1.Volume{Name: backupsVolume, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: b.Claim}}})
		b.Location = v1alpha1.BackupLocation{Claim: b.Claim}
	}
	location, err := json.Marshal(b.Location)
	if err != nil {
		return nil, Backup{}, fmt.Errorf("backup of database %s: location: %w", db.Name, err)
	}
	labels := map[string]string{
		LabelWorkplace: rel.Workplace, LabelBackupOf: rel.Name,
		// The server's NetworkPolicy admits its own release's pods.
		"app.kubernetes.io/instance": db.Server, "app.kubernetes.io/component": "backup",
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: b.Job, Namespace: rel.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:          ptr.To[int32](1),
			ActiveDeadlineSeconds: ptr.To(int64(rel.Timeout.Seconds())),
			Template: corev1.PodTemplateSpec{
				// A Job's pod template cannot change once created: the annotation
				// stays what the Job did.
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{AnnotationBackupLocation: string(location)}},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					SecurityContext:              backup.PodSecurityContext(),
					InitContainers:               initContainers,
					Containers:                   containers,
					Volumes:                      volumes,
				},
			},
		},
	}
	return job, b, nil
}

// scratchVolume is the volume an S3 backup's dump is written to before its upload: a
// generic ephemeral volume (a claim the pod owns, deleted with it) of the profile's
// size and storage class, so a large dump needs no room on the node.
func scratchVolume(b catalog.Backups) (corev1.Volume, error) {
	size := defaultBackupSize
	if b.Size != "" {
		size = b.Size
	}
	q, err := resource.ParseQuantity(size)
	if err != nil {
		return corev1.Volume{}, fmt.Errorf("scratch volume: size %q: %w", size, err)
	}
	spec := corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q}},
	}
	if b.StorageClassName != "" {
		spec.StorageClassName = ptr.To(b.StorageClassName)
	}
	return corev1.Volume{Name: backupsVolume, VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{
		VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app.kubernetes.io/managed-by": "platzwart", "app.kubernetes.io/component": "backup"}},
			Spec:       spec,
		}}}}, nil
}

// backupRecord reads the record backup.sh left in the termination message of the
// Job's succeeded pod.
func (e *Engine) backupRecord(ctx context.Context, namespace, job string) (backup.Record, bool) {
	pods, err := e.cluster.Clientset.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + job})
	if err != nil {
		return backup.Record{}, false
	}
	for i := range pods.Items {
		if rec, ok := PodRecord(&pods.Items[i]); ok {
			return rec, true
		}
	}
	return backup.Record{}, false
}

// PodRecord reads the record backup.sh left in the termination message of a backup
// Job pod's container "backup" that exited 0: an init container when the dump went
// to S3, the pod's only container otherwise.
func PodRecord(p *corev1.Pod) (backup.Record, bool) {
	for _, cs := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
		if t := cs.State.Terminated; cs.Name == backupContainer && t != nil && t.ExitCode == 0 && t.Message != "" {
			if rec, err := backup.ParseRecord([]byte(t.Message)); err == nil {
				return rec, true
			}
		}
	}
	return backup.Record{}, false
}

// jobName is a Job name of at most 63 characters (the Job controller labels its pods
// with it) for a backup of database db of release rel.
func jobName(rel, db, stamp string) string {
	suffix := "-backup-" + db + "-" + stamp
	if len(rel)+len(suffix) > 63 {
		rel = rel[:max(0, 63-len(suffix))]
	}
	name := strings.Trim(rel+suffix, "-")
	if len(name) > 63 {
		name = name[:63]
	}
	return strings.TrimRight(name, "-")
}

// claimHint says why a backup Job may not have run: its claim (with S3: the scratch
// volume's claim of one of its pods, <pod>-backups) is still Pending (no default
// StorageClass, or none that can provision it). "" when the claim is bound or cannot
// be read.
func (e *Engine) claimHint(ctx context.Context, rel *plan.Release, job string) string {
	claims := []string{BackupClaim(rel.Workplace)}
	if rel.Backups.S3 != nil {
		claims = nil
		pods, err := e.cluster.Clientset.CoreV1().Pods(rel.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
		if err != nil {
			return ""
		}
		for _, p := range pods.Items {
			// The ephemeral volume controller names a pod's claim <pod>-<volume>.
			claims = append(claims, p.Name+"-"+backupsVolume)
		}
	}
	for _, name := range claims {
		if hint := e.pendingClaimHint(ctx, rel.Namespace, name); hint != "" {
			return hint
		}
	}
	return ""
}

// pendingClaimHint explains a Pending claim; "" when it is not Pending.
func (e *Engine) pendingClaimHint(ctx context.Context, namespace, name string) string {
	pvc, err := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil || pvc.Status.Phase != corev1.ClaimPending {
		return ""
	}
	class := "the cluster's default StorageClass"
	if pvc.Spec.StorageClassName != nil {
		class = "StorageClass " + *pvc.Spec.StorageClassName
	}
	return fmt.Sprintf("; the backup claim %s/%s is still Pending: %s cannot provision it (kubectl -n %s describe pvc %s; set spec.backups.storageClassName in the profile)",
		namespace, name, class, namespace, name)
}
