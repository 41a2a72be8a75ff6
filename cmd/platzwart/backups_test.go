package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/restore"
)

// runCLIWithInput runs the command line in process with stdin.
func runCLIWithInput(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// stepsWorkplace writes a workplace with the versioned test component of
// reconciler/testdata/steps as its office (a risky version 2.0.0, a database on the
// workplace's PostgreSQL), pinned to pin when it is not "".
func stepsWorkplace(t *testing.T, dir, ns, pin string) {
	t.Helper()
	versions := ""
	if pin != "" {
		versions = "  versions: {steps: " + pin + "}\n"
	}
	wp := fmt.Sprintf(`apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: %s}
spec:
  domain: 192.168.49.44.sslip.io
  profile: minikube
  components: {chat: none, video: none, files: none, office: steps}
%s`, ns, versions)
	if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(wp), 0o644); err != nil {
		t.Fatal(err)
	}
	const src = "../../reconciler/testdata/steps"
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBackupsAndRestoreCommands: the engine takes a backup before the risky step of
// the steps component (apply at 1.0.0, then at the newest); `platzwart backups` lists
// it (table and -o json); `platzwart restore` without --yes asks and, not confirmed,
// changes nothing; an unknown backup is refused naming the known ones; with --yes it
// restores the engine's backup: a restore Job for its dump, the component's
// Deployment back to its replicas, no secret value in the output.
func TestBackupsAndRestoreCommands(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientset(t, c)
	ns := c.NewNamespace(t)
	dir := t.TempDir()
	kc := []string{"--kubeconfig", c.KubeconfigPath()}
	stepsWorkplace(t, dir, ns, "1.0.0")
	if out, errOut, err := runCLI(t, append([]string{"apply", dir}, kc...)...); err != nil {
		t.Fatalf("apply at 1.0.0: %v\n%s\n%s", err, out, errOut)
	}
	stepsWorkplace(t, dir, ns, "")
	if out, errOut, err := runCLI(t, append([]string{"apply", dir}, kc...)...); err != nil {
		t.Fatalf("apply at the newest: %v\n%s\n%s", err, out, errOut)
	}

	out, errOut, err := runCLI(t, append([]string{"backups", "-n", ns, "-o", "json"}, kc...)...)
	if err != nil {
		t.Fatalf("backups -o json: %v\n%s", err, errOut)
	}
	var list []restore.Backup
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("backups -o json is not a list of backups: %v\n%s", err, out)
	}
	if len(list) != 1 {
		t.Fatalf("backups -o json: %d backups, want the one before 2.0.0:\n%s", len(list), out)
	}
	b := list[0]
	if b.State != restore.StateComplete || b.Release != "demo-steps" || b.Database != "steps" || b.Server != "demo-postgresql" ||
		b.Version != "2.0.0" || b.Workplace != "demo" || b.Claim != "demo-backups" || b.Location.Claim != "demo-backups" || b.Location.S3 != nil ||
		!strings.HasPrefix(b.File, "steps-before-2.0.0-") ||
		!strings.HasPrefix(b.Job, "demo-steps-backup-steps-") || b.Finished.IsZero() {
		t.Errorf("the engine's backup as listed: %+v", b)
	}
	var shape []map[string]any
	if err := json.Unmarshal([]byte(out), &shape); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"job", "namespace", "workplace", "release", "database", "server", "version", "claim", "file", "location", "state", "started", "finished"} {
		if _, ok := shape[0][key]; !ok {
			t.Errorf("backups -o json lacks %q:\n%s", key, out)
		}
	}
	if _, ok := shape[0]["record"]; ok {
		t.Errorf("backups -o json has a record though kwok's pod reported none:\n%s", out)
	}

	out, _, err = runCLI(t, append([]string{"backups", "-n", ns, "--workplace", "demo"}, kc...)...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "JOB WORKPLACE RELEASE DATABASE VERSION STATE FILE LOCATION SIZE AGE MESSAGE" {
		t.Fatalf("backups table:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) < 10 || f[0] != b.Job || f[1] != "demo" || f[2] != "demo-steps" || f[3] != "steps" || f[4] != "2.0.0" ||
		f[5] != "Complete" || f[6] != b.File || f[7] != "pvc/demo-backups" || f[8] != "-" {
		t.Errorf("backups table row %q", lines[1])
	}
	if _, errOut, err := runCLI(t, append([]string{"backups", "-n", ns, "--workplace", "other"}, kc...)...); err != nil || !strings.Contains(errOut, "no backups") {
		t.Errorf("backups of another workplace: %v %q", err, errOut)
	}

	restoreJobs := func() int {
		t.Helper()
		l, err := cs.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{LabelSelector: restore.LabelRestoreOf})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	_, errOut, err = runCLIWithInput(t, "n\n", append([]string{"restore", b.File, "-n", ns}, kc...)...)
	if err == nil || !strings.Contains(err.Error(), "not confirmed") || !strings.Contains(errOut, "Deployment demo-steps (1 replicas)") {
		t.Errorf("restore answered no: %v\n%s", err, errOut)
	}
	if n := restoreJobs(); n != 0 {
		t.Errorf("a restore not confirmed created %d Jobs", n)
	}
	if _, _, err := runCLI(t, append([]string{"restore", "steps-before-1.0.0.dump", "-n", ns, "--yes"}, kc...)...); err == nil ||
		!strings.Contains(err.Error(), `no backup "steps-before-1.0.0.dump"`) || !strings.Contains(err.Error(), b.Job) {
		t.Errorf("restore of an unknown backup: %v, want a refusal naming the known backup", err)
	}

	out, errOut, err = runCLI(t, append([]string{"restore", b.Job, "-n", ns, "--yes", "--timeout", "2m"}, kc...)...)
	if err != nil {
		t.Fatalf("restore: %v\n%s\n%s", err, out, errOut)
	}
	t.Logf("platzwart restore:\n%s%s", errOut, out)
	if !strings.Contains(out, "restored database "+ns+"/steps of release demo-steps from "+b.File) || !strings.Contains(out, "back: Deployment demo-steps (1 replicas)") {
		t.Errorf("restore output:\n%s", out)
	}
	jobs, err := cs.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{LabelSelector: restore.LabelRestoreOf + "=" + b.Job})
	if err != nil || len(jobs.Items) != 1 {
		t.Fatalf("restore Jobs of %s: %v (%d)", b.Job, err, len(jobs.Items))
	}
	var file string
	for _, v := range jobs.Items[0].Spec.Template.Spec.Containers[0].Env {
		if v.Name == "RESTORE_FILE" {
			file = v.Value
		}
	}
	if file != "/backups/"+b.File {
		t.Errorf("RESTORE_FILE %q, want /backups/%s", file, b.File)
	}
	dep, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "demo-steps", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != 1 || dep.Annotations[restore.AnnotationReplicas] != "" {
		t.Errorf("demo-steps after the restore: %d replicas, annotation %q", *dep.Spec.Replicas, dep.Annotations[restore.AnnotationReplicas])
	}
	for _, name := range []string{"demo-postgresql-admin", "demo-steps-db-steps"} {
		s, err := cs.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pw := string(s.Data["password"]); pw == "" || strings.Contains(out+errOut, pw) {
			t.Errorf("the output shows the password of Secret %s (or it is empty)", name)
		}
	}
}

// TestBackupsLocationColumn: the table's LOCATION is one word: pvc/<claim> for a
// dump on the workplace's claim, the object's s3:// URL for one in S3.
func TestBackupsLocationColumn(t *testing.T) {
	claim := restore.Backup{Claim: "demo-backups", Location: v1alpha1.BackupLocation{Claim: "demo-backups"}}
	s3 := restore.Backup{Location: v1alpha1.BackupLocation{S3: &v1alpha1.S3Object{Endpoint: "https://s3.example.org", Bucket: "backups", Key: "demo/demo/x.dump"}}}
	if got := location(claim); got != "pvc/demo-backups" {
		t.Errorf("claim backup: %q", got)
	}
	if got := location(s3); got != "s3://backups/demo/demo/x.dump" {
		t.Errorf("S3 backup: %q", got)
	}
}
