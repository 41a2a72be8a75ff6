package restore

import (
	"fmt"
	"path"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/platzwart/platzwart/reconciler/backup"
	"github.com/platzwart/platzwart/reconciler/rclone"
	"github.com/platzwart/platzwart/reconciler/release"
)

const (
	// LabelRestoreOf names, on a restore Job, the backup Job whose dump it restores.
	LabelRestoreOf = "platzwart.io/restore-of"
	// serverContainer is the PostgreSQL container of the server chart's StatefulSet.
	serverContainer = "postgresql"
	// restoreContainer is the container of the restore Job.
	restoreContainer = "restore"
)

// serverEnv returns the libpq environment of a Job that connects to the server as
// its superuser: the server's POSTGRES_USER and POSTGRES_PASSWORD as PGUSER and
// PGPASSWORD, the password as the same Secret reference (a literal password is
// refused: it would be copied into the Job).
func serverEnv(sts *appsv1.StatefulSet) (*corev1.Container, []corev1.EnvVar, error) {
	var server *corev1.Container
	for i := range sts.Spec.Template.Spec.Containers {
		if c := &sts.Spec.Template.Spec.Containers[i]; c.Name == serverContainer {
			server = c
		}
	}
	if server == nil {
		return nil, nil, fmt.Errorf("StatefulSet %s has no container %s", sts.Name, serverContainer)
	}
	env := []corev1.EnvVar{{Name: "PGHOST", Value: sts.Name}, {Name: "PGPORT", Value: "5432"}, {Name: "PGCONNECT_TIMEOUT", Value: "10"}}
	var user, password bool
	for _, v := range server.Env {
		switch v.Name {
		case "POSTGRES_USER":
			env = append(env, corev1.EnvVar{Name: "PGUSER", Value: v.Value, ValueFrom: v.ValueFrom})
			user = true
		case "POSTGRES_PASSWORD":
			if v.ValueFrom == nil || v.ValueFrom.SecretKeyRef == nil {
				return nil, nil, fmt.Errorf("StatefulSet %s: POSTGRES_PASSWORD is not a Secret reference; a restore Job would carry the password", sts.Name)
			}
			env = append(env, corev1.EnvVar{Name: "PGPASSWORD", ValueFrom: v.ValueFrom})
			password = true
		}
	}
	if !user || !password {
		return nil, nil, fmt.Errorf("StatefulSet %s: container %s lacks POSTGRES_USER or POSTGRES_PASSWORD", sts.Name, serverContainer)
	}
	return server, env, nil
}

// NewJob is the Job that runs the server chart's restore.sh for b, built like the
// engine's backup Job: the server's image (client tools of its major) and superuser
// Secret reference, the same security context and volumes (the chart's scripts, the
// backup claim, an emptyDir for /tmp). A dump in S3 is first downloaded by the init
// container "download" (reconciler/rclone: the backup Job's upload settings, the
// same Secret references) onto a scratch volume like the backup Job's.
func NewJob(b Backup, sts *appsv1.StatefulSet, name string) (*batchv1.Job, error) {
	server, env, err := serverEnv(sts)
	if err != nil {
		return nil, err
	}
	dumps := corev1.Volume{Name: backupsVolume, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
		ClaimName: b.Claim, ReadOnly: true}}}
	var initContainers []corev1.Container
	var extra []corev1.Volume
	if o := b.Location.S3; o != nil {
		up, ok := uploadContainer(b)
		if !ok {
			return nil, fmt.Errorf("backup Job %s has no container %s to read %s back with", b.Job, rclone.UploadContainer, o)
		}
		scratch, ok := scratchVolume(b)
		if !ok {
			return nil, fmt.Errorf("backup Job %s has no volume %s", b.Job, backupsVolume)
		}
		dumps = scratch
		download := rclone.Download(up, *o, backupsVolume, backupDir, b.File)
		download.VolumeMounts = append(download.VolumeMounts, corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"})
		initContainers = []corev1.Container{download}
		extra = rclone.Volumes(*b.pod)
	}
	env = append(env,
		corev1.EnvVar{Name: "RESTORE_FILE", Value: path.Join(backupDir, b.File)},
		corev1.EnvVar{Name: "RESTORE_DATABASE", Value: b.Database})
	labels := map[string]string{
		release.LabelWorkplace: b.Workplace, LabelRestoreOf: b.Job,
		// The server's NetworkPolicy admits its own release's pods.
		"app.kubernetes.io/instance": b.Server, "app.kubernetes.io/component": "restore",
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: b.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			// A failed restore is for a person to read (kubectl logs), not to retry:
			// running platzwart restore again retries.
			BackoffLimit: ptr.To[int32](0),
			// No activeDeadlineSeconds: a pod stopped between restore.sh's two renames
			// would leave the database without its name. Restore bounds its wait
			// instead and leaves the consumers stopped while the Job may still run.
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					ImagePullSecrets:             sts.Spec.Template.Spec.ImagePullSecrets,
					SecurityContext:              backup.PodSecurityContext(),
					InitContainers:               initContainers,
					Containers: []corev1.Container{{
						Name: restoreContainer, Image: server.Image, ImagePullPolicy: server.ImagePullPolicy,
						Command:         []string{"/bin/sh", "/scripts/restore.sh"},
						Env:             env,
						SecurityContext: backup.ContainerSecurityContext(),
						VolumeMounts: []corev1.VolumeMount{
							{Name: "scripts", MountPath: "/scripts", ReadOnly: true},
							// restore.sh only reads the dump.
							{Name: backupsVolume, MountPath: backupDir, ReadOnly: true},
							{Name: "tmp", MountPath: "/tmp"},
						},
					}},
					Volumes: append([]corev1.Volume{
						{Name: "scripts", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: scriptsConfigMap(b.Server)}}}},
						dumps,
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					}, extra...),
				},
			},
		},
	}, nil
}

// uploadContainer is the container of b's Job that copied the dump to S3.
func uploadContainer(b Backup) (corev1.Container, bool) {
	if b.pod == nil {
		return corev1.Container{}, false
	}
	for _, c := range b.pod.Containers {
		if c.Name == rclone.UploadContainer {
			return c, true
		}
	}
	return corev1.Container{}, false
}

// scratchVolume is the volume b's Job wrote its dump to before the upload (an
// ephemeral volume of the profile's size and storage class), for the download.
func scratchVolume(b Backup) (corev1.Volume, bool) {
	if b.pod == nil {
		return corev1.Volume{}, false
	}
	for _, v := range b.pod.Volumes {
		if v.Name == backupsVolume {
			return *v.DeepCopy(), true
		}
	}
	return corev1.Volume{}, false
}

// scriptsConfigMap is the server chart's ConfigMap with backup.sh and restore.sh.
func scriptsConfigMap(server string) string { return server + "-backup" }

// jobName is a restore Job name of at most 63 characters (the Job controller labels
// its pods with it): <workplace>-restore-<database>-<UTC time>.
func jobName(workplace, db string, now time.Time) string {
	suffix := "-" + strings.ToLower(now.UTC().Format("20060102t150405"))
	name := workplace + "-restore-" + db
	if len(name)+len(suffix) > 63 {
		name = name[:63-len(suffix)]
	}
	return strings.TrimRight(name, "-") + suffix
}
