package restore_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/release"
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	os.Exit(cluster.RunTests(m))
}

const (
	workplace = "demo"
	server    = "demo-postgresql"
	owner     = "demo-keycloak"
	database  = "keycloak"
	// superuserPassword is the value of the server's superuser Secret: it must
	// appear in no Job and no output.
	superuserPassword = "Sup3r-secret-value-never-printed"
	serverImage       = "docker.io/library/postgres:18.6-trixie"
)

// fixture is a workplace as the engine leaves it, made by hand: the PostgreSQL
// server StatefulSet with its superuser Secret and the chart's scripts ConfigMap,
// the backup claim, the release record and database Secret of keycloak, keycloak's
// Deployment (2 replicas) and StatefulSet (1), and another release's Deployment.
type fixture struct {
	t      *testing.T
	c      *cluster.Cluster
	kc     *kube.Cluster
	writes *cluster.Writes
	ns     string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := cluster.FromTest(t)
	w := &cluster.Writes{}
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath(), WrapConfig: w.Wrap})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, c: c, kc: kc, writes: w, ns: c.NewNamespace(t)}
	ctx := t.Context()
	cs := kc.Clientset
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cs.CoreV1().Secrets(f.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: server + "-admin"},
		StringData: map[string]string{"password": superuserPassword}}, metav1.CreateOptions{}))
	must(cs.CoreV1().Secrets(f.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: owner + "-db-" + database},
		StringData: map[string]string{"password": "consumer-password"}}, metav1.CreateOptions{}))
	// Helm's release records, labelled as platzwart labels them.
	for _, rel := range []string{server, owner, "demo-nextcloud"} {
		must(cs.CoreV1().Secrets(f.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sh.helm.release.v1." + rel + ".v1",
			Labels: map[string]string{"owner": "helm", "name": rel, "status": "deployed", "version": "1", release.LabelWorkplace: workplace}},
			Type: "helm.sh/release.v1"}, metav1.CreateOptions{}))
	}
	must(cs.CoreV1().ConfigMaps(f.ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: server + "-backup"},
		Data: map[string]string{"backup.sh": "exit 0\n", "restore.sh": "exit 0\n"}}, metav1.CreateOptions{}))
	must(cs.CoreV1().PersistentVolumeClaims(f.ns).Create(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: release.BackupClaim(workplace)},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}, metav1.CreateOptions{}))
	pg := corev1.Container{Name: "postgresql", Image: serverImage, Env: []corev1.EnvVar{
		{Name: "POSTGRES_USER", Value: "postgres"},
		{Name: "POSTGRES_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: server + "-admin"}, Key: "password"}}},
	}}
	must(cs.AppsV1().StatefulSets(f.ns).Create(ctx, statefulSet(server, server, 1, pg), metav1.CreateOptions{}))
	must(cs.AppsV1().Deployments(f.ns).Create(ctx, deployment(owner, owner, 2), metav1.CreateOptions{}))
	must(cs.AppsV1().StatefulSets(f.ns).Create(ctx, statefulSet(owner+"-cache", owner, 1, corev1.Container{Name: "cache", Image: "docker.io/library/busybox:1.37.0"}), metav1.CreateOptions{}))
	must(cs.AppsV1().Deployments(f.ns).Create(ctx, deployment("demo-nextcloud", "demo-nextcloud", 1), metav1.CreateOptions{}))
	for _, name := range []string{server, owner + "-cache"} {
		f.waitFor("StatefulSet "+name+" ready", func(ctx context.Context) (bool, error) {
			s, err := cs.AppsV1().StatefulSets(f.ns).Get(ctx, name, metav1.GetOptions{})
			return err == nil && s.Status.ReadyReplicas == 1, nil
		})
	}
	for _, name := range []string{owner, "demo-nextcloud"} {
		f.waitFor("Deployment "+name+" available", func(ctx context.Context) (bool, error) {
			d, err := cs.AppsV1().Deployments(f.ns).Get(ctx, name, metav1.GetOptions{})
			return err == nil && d.Status.AvailableReplicas == *d.Spec.Replicas, nil
		})
	}
	return f
}

// helmMeta is the metadata Helm gives an object of a release.
func helmMeta(name, rel string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "Helm"},
		Annotations: map[string]string{"meta.helm.sh/release-name": rel}}
}

func deployment(name, rel string, replicas int32) *appsv1.Deployment {
	m := helmMeta(name, rel)
	sel := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.Deployment{ObjectMeta: m, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: sel},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "docker.io/library/busybox:1.37.0"}}}},
	}}
}

func statefulSet(name, rel string, replicas int32, c corev1.Container) *appsv1.StatefulSet {
	m := helmMeta(name, rel)
	sel := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.StatefulSet{ObjectMeta: m, Spec: appsv1.StatefulSetSpec{
		Replicas: ptr.To(replicas), ServiceName: name, Selector: &metav1.LabelSelector{MatchLabels: sel},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}},
	}}
}

// backupJob creates a backup Job shaped as reconciler/release makes it (labels,
// container, backup.sh's environment, volumes) and returns its name and file.
func (f *fixture) backupJob(rel, db, version string, at time.Time, mutate ...func(*batchv1.Job)) (job, file string) {
	f.t.Helper()
	stamp := strings.ToLower(at.UTC().Format("20060102t150405"))
	name := fmt.Sprintf("%s-before-%s-%s", db, version, stamp)
	job = rel + "-backup-" + db + "-" + stamp
	labels := map[string]string{release.LabelWorkplace: workplace, release.LabelBackupOf: rel,
		"app.kubernetes.io/instance": server, "app.kubernetes.io/component": "backup"}
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: job, Labels: labels},
		Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](0), Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "backup", Image: serverImage, Command: []string{"/bin/sh", "/scripts/backup.sh"},
					Env: []corev1.EnvVar{{Name: "PGHOST", Value: server}, {Name: "PGUSER", Value: "postgres"},
						{Name: "PGPASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: server + "-admin"}, Key: "password"}}},
						{Name: "BACKUP_DATABASE", Value: db}, {Name: "BACKUP_DIR", Value: "/backups"}, {Name: "BACKUP_NAME", Value: name},
						{Name: "BACKUP_RECORD_FILE", Value: corev1.TerminationMessagePathDefault}},
					VolumeMounts: []corev1.VolumeMount{{Name: "scripts", MountPath: "/scripts"}, {Name: "backups", MountPath: "/backups"}}}},
				Volumes: []corev1.Volume{
					{Name: "scripts", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: server + "-backup"}}}},
					{Name: "backups", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: release.BackupClaim(workplace)}}},
				},
			},
		}},
	}
	for _, m := range mutate {
		m(j)
	}
	if _, err := f.kc.Clientset.BatchV1().Jobs(f.ns).Create(f.t.Context(), j, metav1.CreateOptions{}); err != nil {
		f.t.Fatal(err)
	}
	return job, name + ".dump"
}

// waitJob waits until a Job has the condition.
func (f *fixture) waitJob(name string, cond batchv1.JobConditionType) {
	f.t.Helper()
	f.waitFor("Job "+name+" "+string(cond), func(ctx context.Context) (bool, error) {
		j, err := f.kc.Clientset.BatchV1().Jobs(f.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == cond && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

// completeBackup creates a backup Job and waits until kwok completed it.
func (f *fixture) completeBackup(rel, db, version string, at time.Time) (job, file string) {
	f.t.Helper()
	job, file = f.backupJob(rel, db, version, at)
	f.waitJob(job, batchv1.JobComplete)
	return job, file
}

func (f *fixture) waitFor(what string, cond wait.ConditionWithContextFunc) {
	f.t.Helper()
	if err := wait.PollUntilContextTimeout(f.t.Context(), 100*time.Millisecond, time.Minute, true, cond); err != nil {
		f.t.Fatalf("waiting for %s: %v", what, err)
	}
}

func (f *fixture) deployment(name string) *appsv1.Deployment {
	f.t.Helper()
	d, err := f.kc.Clientset.AppsV1().Deployments(f.ns).Get(f.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) statefulSet(name string) *appsv1.StatefulSet {
	f.t.Helper()
	s, err := f.kc.Clientset.AppsV1().StatefulSets(f.ns).Get(f.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// pods returns the names of the pods matching a selector that have not ended.
func (f *fixture) pods(sel map[string]string) []string {
	f.t.Helper()
	list, err := f.kc.Clientset.CoreV1().Pods(f.ns).List(f.t.Context(), metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: sel})})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p.Name)
		}
	}
	return out
}
