package backup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/pgtest"
	"github.com/platzwart/platzwart/e2e/s3test"
	"github.com/platzwart/platzwart/reconciler/backup"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/rclone"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/render"
	"github.com/platzwart/platzwart/reconciler/restore"
)

const (
	s3Bucket         = "platzwart-backups"
	s3Credentials    = "backup-s3"
	s3CA             = "backup-s3-ca"
	s3TestSuperuser  = "postgres" // the chart's POSTGRES_USER
	s3TestAdminValue = "admin-Secret-7"
)

// s3Workplace is the example workplace on a profile that sends backups to the test's
// S3 server: its plan, the release whose databases a backup dumps, and the rendered
// PostgreSQL release's StatefulSet and scripts.
type s3Workplace struct {
	plan    *plan.Plan
	rel     *plan.Release
	sts     *appsv1.StatefulSet
	scripts map[string]string
}

func newS3Workplace(t *testing.T, endpoint string) s3Workplace {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile("../../examples/workplace/workplace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wp := strings.Replace(string(data), "profile: minikube", "profile: s3test", 1)
	profile := fmt.Sprintf(`apiVersion: platzwart.io/v1alpha1
kind: Profile
metadata: {name: s3test}
spec:
  extends: minikube
  backups:
    size: 3Gi
    s3:
      endpoint: %s
      bucket: %s
      credentialsSecret: %s
      caSecret: {name: %s}
`, endpoint, s3Bucket, s3Credentials, s3CA)
	for name, content := range map[string]string{"workplace.yaml": wp, "profiles/s3test.yaml": profile} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := load.Dir(dir, platzwart.Builtin(), "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	w := s3Workplace{plan: p}
	for _, r := range p.Releases {
		switch {
		case r.Component == "postgresql":
			m, err := render.Release(t.Context(), r)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := m.Objects()
			if err != nil {
				t.Fatal(err)
			}
			w.scripts = pgtest.ConfigMapData(t, objs, r.Name+"-backup")
			for _, o := range objs {
				if o.Kind == "StatefulSet" && o.Name == r.Name {
					w.sts = &appsv1.StatefulSet{}
					if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Fields, w.sts); err != nil {
						t.Fatal(err)
					}
				}
			}
		case len(r.Databases) > 0 && w.rel == nil:
			w.rel = r
		}
	}
	if w.rel == nil || w.sts == nil || w.scripts["backup.sh"] == "" {
		t.Fatalf("the example lacks a release with databases, the server's StatefulSet or its scripts")
	}
	return w
}

// pod runs a Job's pod template on this machine: its init containers, then its
// containers, each with exactly its command and environment, except what only a
// cluster provides. Volumes are directories (a fresh one per emptyDir, ephemeral
// volume or claim; ConfigMap and Secret volumes hold the objects' data); paths below
// a container's mounts, in its command and environment, are rewritten to them; a
// Secret reference in the environment takes the value the test gives it; PGHOST and
// PGPORT name the test's server instead of the Service; the termination message
// file is a file per container. PATH is the image's (the server's client tools for
// the server image).
type pod struct {
	t       *testing.T
	spec    corev1.PodSpec
	volumes map[string]string
	secrets map[string]string // "<secret>/<key>" → value
	pg      *pgtest.Server
	rclone  string
	// messages are the termination messages, by container.
	messages map[string]string
}

func newPod(t *testing.T, spec corev1.PodSpec, pg *pgtest.Server, rcloneBin string, configMaps map[string]map[string]string, secrets map[string]string) *pod {
	t.Helper()
	p := &pod{t: t, spec: spec, volumes: map[string]string{}, secrets: secrets, pg: pg, rclone: rcloneBin, messages: map[string]string{}}
	for _, v := range spec.Volumes {
		dir := t.TempDir()
		switch {
		case v.ConfigMap != nil:
			data, ok := configMaps[v.ConfigMap.Name]
			if !ok {
				t.Fatalf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
			}
			for k, val := range data {
				writeFile(t, filepath.Join(dir, k), val)
			}
		case v.Secret != nil:
			for _, item := range v.Secret.Items {
				val, ok := secrets[v.Secret.SecretName+"/"+item.Key]
				if !ok {
					t.Fatalf("volume %s: no key %s in Secret %s", v.Name, item.Key, v.Secret.SecretName)
				}
				writeFile(t, filepath.Join(dir, item.Path), val)
			}
		case v.EmptyDir != nil, v.Ephemeral != nil, v.PersistentVolumeClaim != nil:
		default:
			t.Fatalf("volume %s: a kind this test does not run", v.Name)
		}
		p.volumes[v.Name] = dir
	}
	return p
}

// run runs every container in order and returns the first error.
func (p *pod) run() error {
	for _, c := range append(append([]corev1.Container(nil), p.spec.InitContainers...), p.spec.Containers...) {
		if err := p.runContainer(c); err != nil {
			return fmt.Errorf("container %s: %w", c.Name, err)
		}
	}
	return nil
}

func (p *pod) runContainer(c corev1.Container) error {
	t := p.t
	t.Helper()
	message := filepath.Join(t.TempDir(), "termination-log")
	path := func(s string) string {
		for _, m := range c.VolumeMounts {
			if s == m.MountPath || strings.HasPrefix(s, m.MountPath+"/") {
				return p.volumes[m.Name] + strings.TrimPrefix(s, m.MountPath)
			}
		}
		if s == corev1.TerminationMessagePathDefault {
			return message
		}
		return s
	}
	if len(c.Command) == 0 || len(c.Args) > 0 {
		t.Fatalf("container %s: want the whole command in command, got %q %q", c.Name, c.Command, c.Args)
	}
	argv := make([]string, len(c.Command))
	for i, a := range c.Command {
		argv[i] = path(a)
	}
	envPath := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	switch argv[0] {
	case "rclone":
		argv[0] = p.rclone
	case "/bin/sh":
		envPath = p.pg.Bin + ":" + envPath
	default:
		t.Fatalf("container %s runs %s, which this test cannot", c.Name, argv[0])
	}
	env := []string{"PATH=" + envPath, "HOME=/nonexistent", "XDG_CONFIG_HOME=/config"}
	for _, v := range c.Env {
		val := v.Value
		if v.ValueFrom != nil {
			ref := v.ValueFrom.SecretKeyRef
			if ref == nil {
				t.Fatalf("container %s: env %s is not a value or Secret reference", c.Name, v.Name)
			}
			var ok bool
			if val, ok = p.secrets[ref.Name+"/"+ref.Key]; !ok {
				t.Fatalf("container %s: env %s refers to Secret %s key %s, which the test does not give", c.Name, v.Name, ref.Name, ref.Key)
			}
		}
		switch v.Name {
		case "PGHOST":
			val = "127.0.0.1"
		case "PGPORT":
			val = fmt.Sprint(p.pg.Port)
		}
		env = append(env, v.Name+"="+path(val))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	t.Logf("container %s (%s):\n%s", c.Name, strings.Join(c.Command, " "), out)
	for _, secret := range p.secrets {
		if len(secret) >= 8 && bytes.Contains(out, []byte(secret)) {
			t.Errorf("container %s printed a secret value", c.Name)
		}
	}
	if msg, rerr := os.ReadFile(message); rerr == nil {
		p.messages[c.Name] = string(msg)
	}
	return err
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBackupToS3AndRestore runs the S3 backup and restore as the engine and
// platzwart restore build them, against a real PostgreSQL server and a real S3 server
// (versitygw over TLS with its own CA, signature V4), with rclone built at the image's
// version. The backup Job's pod (release.BackupJob for a profile with spec.backups.s3)
// runs backup.sh in its init container, then its upload container: the object
// <namespace>/<workplace>/<file> has the record's size and checksum. The restore Job
// (restore.NewJob for the backup as restore.FromJob reads it) downloads the object in
// its init container onto a scratch volume of its own and restores it with
// restore.sh: the database has the dumped data again. Wrong credentials make the
// upload fail with nothing in the bucket; a second upload under the same name with
// other content fails and leaves the first object as it was.
func TestBackupToS3AndRestore(t *testing.T) {
	rcloneBin := s3test.Rclone(t)
	s3 := s3test.Start(t)
	s3.MakeBucket(t, s3Bucket)
	w := newS3Workplace(t, s3.Endpoint)
	db := w.rel.Databases[0]
	caPEM, err := os.ReadFile(s3.CAFile)
	if err != nil {
		t.Fatal(err)
	}

	pg := pgtest.Start(t, s3TestSuperuser, s3TestAdminValue)
	pg.Query(t, "postgres", fmt.Sprintf(`CREATE ROLE %q LOGIN PASSWORD 'consumer-Secret-3'`, db.Name))
	pg.Query(t, "postgres", fmt.Sprintf(`CREATE DATABASE %q OWNER %q TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`, db.Name, db.Name))
	setup := exec.CommandContext(t.Context(), "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", `
CREATE TABLE notes (id bigserial PRIMARY KEY, title text NOT NULL, body text);
INSERT INTO notes (title, body) SELECT 'Notiz ' || i, 'Grüße aus Köln – ' || repeat('ä', i % 50) FROM generate_series(1, 5000) i;`)
	setup.Env = append(os.Environ(), pg.Env(db.Name, "consumer-Secret-3", db.Name)...)
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	want := pg.Query(t, db.Name, fingerprint)

	job, b, err := release.BackupJob(w.rel, db, w.sts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	spec := job.Spec.Template.Spec
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != "backup" || len(spec.Containers) != 1 || spec.Containers[0].Name != rclone.UploadContainer {
		t.Fatalf("backup Job: init containers %d, containers %d; want backup, then upload", len(spec.InitContainers), len(spec.Containers))
	}
	o := b.Location.S3
	wantKey := w.plan.Namespace + "/" + w.plan.Workplace + "/" + b.File
	if o == nil || o.Bucket != s3Bucket || o.Key != wantKey || o.Endpoint != s3.Endpoint || b.Claim != "" {
		t.Fatalf("backup location %+v (claim %q), want s3://%s/%s at %s", b.Location, b.Claim, s3Bucket, wantKey, s3.Endpoint)
	}
	adminRef := ""
	for _, v := range spec.InitContainers[0].Env {
		if v.Name == "PGPASSWORD" && v.ValueFrom != nil && v.ValueFrom.SecretKeyRef != nil {
			adminRef = v.ValueFrom.SecretKeyRef.Name + "/" + v.ValueFrom.SecretKeyRef.Key
		}
	}
	secrets := map[string]string{
		adminRef: s3TestAdminValue,
		s3Credentials + "/" + rclone.AccessKeyIDKey:     s3.AccessKeyID,
		s3Credentials + "/" + rclone.SecretAccessKeyKey: s3.SecretAccessKey,
		s3CA + "/ca.crt": string(caPEM),
	}
	configMaps := map[string]map[string]string{w.sts.Name + "-backup": w.scripts}

	// Wrong credentials: the upload fails and leaves nothing in the bucket.
	wrong := map[string]string{}
	for k, v := range secrets {
		wrong[k] = v
	}
	wrong[s3Credentials+"/"+rclone.SecretAccessKeyKey] = "not-the-secret-key-0123456789"
	if err := newPod(t, spec, pg, rcloneBin, configMaps, wrong).run(); err == nil || !strings.Contains(err.Error(), "container upload") {
		t.Fatalf("the pod with wrong credentials: %v; want the upload container to fail", err)
	}
	if objs := s3.Objects(t, s3Bucket); len(objs) > 0 {
		t.Fatalf("a failed upload left objects: %v", objs)
	}

	backupPod := newPod(t, spec, pg, rcloneBin, configMaps, secrets)
	if err := backupPod.run(); err != nil {
		t.Fatalf("the backup Job's pod: %v", err)
	}
	rec, err := backup.ParseRecord([]byte(backupPod.messages["backup"]))
	if err != nil {
		t.Fatalf("the termination message of container backup: %v", err)
	}
	if rec.File != b.File || rec.Database != db.Name {
		t.Errorf("record %+v, want %s of %s", rec, b.File, db.Name)
	}
	objs := s3.Objects(t, s3Bucket)
	if size, ok := objs[wantKey]; !ok || size != rec.Bytes || len(objs) != 1 {
		t.Fatalf("objects %v, want only %s with the record's %d bytes", objs, wantKey, rec.Bytes)
	}
	stored, err := os.ReadFile(filepath.Join(s3.Dir, s3Bucket, wantKey))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(stored); hex.EncodeToString(sum[:]) != rec.SHA256 {
		t.Errorf("the object's SHA-256 %x is not the record's %s", sum, rec.SHA256)
	}

	// The object is never replaced: another dump under the same name is refused.
	again := newPod(t, corev1.PodSpec{Volumes: spec.Volumes, Containers: spec.Containers}, pg, rcloneBin, configMaps, secrets)
	scratch := again.volumes["backups"]
	writeFile(t, filepath.Join(scratch, b.File), "not the dump "+strings.Repeat("x", 100))
	if err := again.run(); err == nil {
		t.Errorf("a second upload under the name %s with other content succeeded", b.File)
	}
	if now, err := os.ReadFile(filepath.Join(s3.Dir, s3Bucket, wantKey)); err != nil || !bytes.Equal(now, stored) {
		t.Errorf("the object changed after a refused upload (%v)", err)
	}

	// What an upgrade gone wrong might leave.
	pg.Query(t, db.Name, `DELETE FROM notes WHERE id % 2 = 0; UPDATE notes SET body = 'kaputt'`)

	// The restore, as platzwart restore builds it from the backup Job.
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	listed, ok := restore.FromJob(job)
	if !ok || listed.Location.S3 == nil || *listed.Location.S3 != *o || listed.File != b.File || listed.Database != db.Name {
		t.Fatalf("the backup as restore reads it: %+v (%v)", listed, ok)
	}
	rjob, err := restore.NewJob(listed, w.sts, "demo-restore-test")
	if err != nil {
		t.Fatal(err)
	}
	rspec := rjob.Spec.Template.Spec
	if len(rspec.InitContainers) != 1 || rspec.InitContainers[0].Name != rclone.DownloadContainer {
		t.Fatalf("restore Job: init containers %v, want download", rspec.InitContainers)
	}
	restorePod := newPod(t, rspec, pg, rcloneBin, configMaps, secrets)
	if err := restorePod.run(); err != nil {
		t.Fatalf("the restore Job's pod: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(restorePod.volumes["backups"], b.File))
	if err != nil || !bytes.Equal(got, stored) {
		t.Errorf("the downloaded dump differs from the object (%v)", err)
	}
	if got := pg.Query(t, db.Name, fingerprint); got != want {
		t.Errorf("after the restore from S3: %s, want the dumped data %s", got, want)
	}
	left := 0
	_ = filepath.WalkDir(backupPod.volumes["backups"], func(_ string, d fs.DirEntry, _ error) error {
		if d != nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".partial") {
			left++
		}
		return nil
	})
	if left > 0 {
		t.Errorf("%d partial files left on the scratch volume", left)
	}
}
