package reconciler_test

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/upgrade"
	"github.com/platzwart/platzwart/reconciler/workload"
)

// TestVersionStepsOnTheCluster installs the example with Nextcloud pinned to its
// older listed version, then follows the newest (one allowed step), then pins the
// older version again: that downgrade is refused before anything is written, naming
// the pin, and the deployed version recorded in Helm's storage is the newer one.
func TestVersionStepsOnTheCluster(t *testing.T) {
	e := newEnv(t)
	pinned := e.plan(e.workplaceDir(map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n  versions: {nextcloud: 33.0.7}\n"}, nil))
	e.reconcile(pinned)
	if got := e.versionLabel("demo-nextcloud"); got != "33.0.7" {
		t.Fatalf("version recorded after the pinned install: %q, want 33.0.7", got)
	}

	newest := e.plan(e.workplaceDir(nil, nil))
	e.reconcile(newest)
	var want string
	for _, r := range newest.Releases {
		if r.Component == "nextcloud" {
			want = r.Version
		}
	}
	if got := e.versionLabel("demo-nextcloud"); got != want || want == "33.0.7" {
		t.Fatalf("version recorded after following the newest: %q, want %q", got, want)
	}

	e.count.reset()
	_, err := e.rec.Reconcile(t.Context(), pinned)
	var down *upgrade.DowngradeError
	if !errors.As(err, &down) {
		t.Fatalf("pinning the older version again: %v, want a *upgrade.DowngradeError", err)
	}
	if !strings.Contains(err.Error(), "spec.versions.nextcloud") {
		t.Errorf("the refusal does not name the pin: %v", err)
	}
	if _, mutating := e.count.snapshot(); len(mutating) > 0 {
		t.Errorf("the refused downgrade wrote to the cluster: %v", mutating)
	}
	if got := e.versionLabel("demo-nextcloud"); got != want {
		t.Errorf("version recorded after the refusal: %q, want %q", got, want)
	}
}

// versionLabel returns the platzwart.io/version label of a release's newest revision.
func (e *env) versionLabel(name string) string {
	e.t.Helper()
	list, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).List(e.t.Context(), metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		e.t.Fatal(err)
	}
	best, label := -1, ""
	for _, s := range list.Items {
		v, _ := strconv.Atoi(s.Labels["version"])
		if v > best {
			best, label = v, s.Labels[release.LabelVersion]
		}
	}
	if best < 0 {
		e.t.Fatalf("release %s has no revision", name)
	}
	return label
}

// stepsComponent reads the repository component in testdata/steps: three versions,
// 2.0.0 a risky mandatory stepping stone and 3.0.0 accepting upgrades only from 2.0.0
// on, each running another image tag, with a database.
func stepsComponent(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir("testdata/steps", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel("testdata/steps", path)
		files[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestVersionPathTakesEveryStep installs a component at its oldest version, then lets
// it follow the newest: the engine takes the path through the mandatory stepping stone,
// one Helm upgrade per version, each ready before the next, and records each version.
// The risky step is preceded by a backup Job of the component's database (kwok
// completes Jobs without running them: what backup.sh does is tested against a real
// server in reconciler/backup).
func TestVersionPathTakesEveryStep(t *testing.T) {
	e := newEnv(t)
	office := map[string]string{"office: collabora": "office: steps"}
	pinned := map[string]string{"office: collabora": "office: steps", "  dataPolicy: Retain\n": "  dataPolicy: Retain\n  versions: {steps: 1.0.0}\n"}
	e.reconcile(e.plan(e.workplaceDir(pinned, stepsComponent(t))))
	if got := e.versionLabel("demo-steps"); got != "1.0.0" {
		t.Fatalf("version after the pinned install: %q, want 1.0.0", got)
	}
	e.events.reset()
	steps, err := e.rec.Engine.Decide(t.Context(), e.plan(e.workplaceDir(office, stepsComponent(t))))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.Component == "steps" && !slices.Equal(s.Versions, []string{"1.0.0", "2.0.0", "3.0.0"}) {
			t.Errorf("the plan shows the version path %v (%s), want 1.0.0 → 2.0.0 → 3.0.0", s.Versions, s.Reason)
		}
	}
	rep := e.reconcile(e.plan(e.workplaceDir(office, stepsComponent(t))))
	if got := actions(rep)["steps"]; got != release.ActionUpgrade {
		t.Fatalf("steps was %s, want upgraded", got)
	}
	got := e.history("demo-steps")
	if want := []string{"1.0.0 ready", "2.0.0 ready", "3.0.0 ready"}; !slices.Equal(got, want) {
		t.Errorf("revisions %v, want %v (one upgrade per version, each ready)", got, want)
	}
	first, second := e.events.indexOf("demo-steps", "upgrade", "step 1 of 2: version 2.0.0"), e.events.indexOf("demo-steps", "upgrade", "step 2 of 2: version 3.0.0")
	ready := e.events.indexAfter("demo-steps", "ready", first)
	if first < 0 || second < 0 || ready < 0 || ready > second {
		t.Errorf("events: step 1 at %d, its ready at %d, step 2 at %d: want each step ready before the next", first, ready, second)
	}
	// The risky step to 2.0.0 was preceded by a backup of the component's database,
	// run from the PostgreSQL server's own image and Secret reference; 3.0.0 is not
	// risky.
	var backups []release.Backup
	for _, o := range rep.Result.Outcomes {
		if o.Component == "steps" {
			backups = o.Backups
		}
	}
	if len(backups) != 1 || backups[0].Database != "steps" || backups[0].Version != "2.0.0" || backups[0].Claim != "demo-backups" || !strings.HasSuffix(backups[0].File, ".dump") {
		t.Fatalf("backups %+v, want one of database steps before 2.0.0 on claim demo-backups", backups)
	}
	backup := e.events.indexOf("demo-steps", "backup", "database steps: "+backups[0].File+" on claim demo-backups")
	if backup < 0 || first < 0 || backup > first {
		t.Errorf("backup done at event %d, step to 2.0.0 at %d: want the backup first", backup, first)
	}
	job, err := e.cluster.Clientset.BatchV1().Jobs(e.ns).Get(t.Context(), backups[0].Job, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sts, err := e.cluster.Clientset.AppsV1().StatefulSets(e.ns).Get(t.Context(), "demo-postgresql", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := job.Spec.Template.Spec.Containers[0]
	if c.Image != sts.Spec.Template.Spec.Containers[0].Image {
		t.Errorf("backup image %s, want the server's %s", c.Image, sts.Spec.Template.Spec.Containers[0].Image)
	}
	for _, v := range c.Env {
		if v.Name == "PGPASSWORD" && (v.Value != "" || v.ValueFrom == nil || v.ValueFrom.SecretKeyRef == nil || v.ValueFrom.SecretKeyRef.Name != "demo-postgresql-admin") {
			t.Errorf("PGPASSWORD %+v: want a reference to the superuser Secret, never a value", v)
		}
	}
	pvc, err := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(e.ns).Get(t.Context(), "demo-backups", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the backup claim: %v", err)
	}
	// The minikube profile's spec.backups.size.
	if got := pvc.Spec.Resources.Requests.Storage().String(); got != "2Gi" {
		t.Errorf("backup claim size %s, want the profile's 2Gi", got)
	}
	dep, err := e.cluster.Clientset.AppsV1().Deployments(e.ns).Get(t.Context(), "demo-steps", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "docker.io/library/busybox:1.37.0" {
		t.Errorf("image after the path: %s", img)
	}
	rep = e.reconcile(e.plan(e.workplaceDir(office, stepsComponent(t))))
	if got := actions(rep)["steps"]; got != release.ActionUnchanged {
		t.Errorf("after the path, steps is %s, want unchanged", got)
	}
}

// history returns "<version> ready|unready" for each revision of a release, oldest first.
func (e *env) history(name string) []string {
	e.t.Helper()
	list, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).List(e.t.Context(), metav1.ListOptions{LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		e.t.Fatal(err)
	}
	slices.SortFunc(list.Items, func(a, b corev1.Secret) int {
		x, _ := strconv.Atoi(a.Labels["version"])
		y, _ := strconv.Atoi(b.Labels["version"])
		return x - y
	})
	var out []string
	for _, s := range list.Items {
		state := "unready"
		if s.Labels[release.LabelReady] == "true" {
			state = "ready"
		}
		out = append(out, s.Labels[release.LabelVersion]+" "+state)
	}
	return out
}

// indexOf returns the position of the first event of a release and step whose message
// is msg, or -1.
func (l *eventLog) indexOf(rel, step, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.events {
		if e.Release == rel && e.Step == step && e.Message == msg {
			return i
		}
	}
	return -1
}

// indexAfter returns the position of the first event of a release and step after
// position from, or -1.
func (l *eventLog) indexAfter(rel, step string, from int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := from + 1; from >= 0 && i < len(l.events); i++ {
		if l.events[i].Release == rel && l.events[i].Step == step {
			return i
		}
	}
	return -1
}

// actions maps each component of a report to what was done to it.
func actions(rep *reconciler.Report) map[string]release.Action {
	out := map[string]release.Action{}
	for _, o := range rep.Result.Outcomes {
		out[o.Component] = o.Action
	}
	return out
}

// stepsWithMigrations is the steps component with migrations on the step to 3.0.0:
// block is YAML list items under its migrations key (indented by eight spaces).
func stepsWithMigrations(t *testing.T, risky bool, block string) map[string]string {
	t.Helper()
	files := stepsComponent(t)
	const newest = "    - version: 3.0.0\n      from: \">=2.0.0\"\n"
	c := files["components/steps/component.yaml"]
	if !strings.Contains(c, newest) {
		t.Fatalf("testdata/steps: version 3.0.0 not found in\n%s", c)
	}
	add := newest
	if risky {
		add += "      risky: true\n"
	}
	add += "      migrations:\n" + block
	files["components/steps/component.yaml"] = strings.Replace(c, newest, add, 1)
	return files
}

// migrationJob is a migration declaration running busybox with the given args.
func migrationJob(name, phase, extra string) string {
	return `        - name: ` + name + `
          phase: ` + phase + `
          timeout: 2m
          job: |
            backoffLimit: 0
            template:
              spec:
                restartPolicy: Never` + extra + `
                containers:
                  - name: migrate
                    image: docker.io/library/busybox:1.37.0
                    args: [sh, -c, "echo ` + name + `"]
`
}

// jobsOf returns the migration Jobs of a release by migration name.
func (e *env) migrationJobs(rel string) map[string]*batchv1.Job {
	e.t.Helper()
	list, err := e.cluster.Clientset.BatchV1().Jobs(e.ns).List(e.t.Context(), metav1.ListOptions{LabelSelector: release.LabelMigrationOf + "=" + rel})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]*batchv1.Job{}
	for i := range list.Items {
		out[list.Items[i].Labels[release.LabelMigration]] = &list.Items[i]
	}
	return out
}

// TestFailedMigrationStopsThePath: the step to 3.0.0 runs its pre-migration, the
// upgrade, then a post-migration whose Job fails. The path stops there: the upgrade
// is rolled back to 2.0.0, the migration after the failed one never runs, the
// backup taken before the risky step is kept, and the outcome says what failed and
// which command restores the backup. The next reconcile does not try the step again
// while the failed Job is there (no upgrade, no rollback, no new backup), and once
// the Job is deleted the step runs again.
func TestFailedMigrationStopsThePath(t *testing.T) {
	e := newEnv(t)
	office := map[string]string{"office: collabora": "office: steps"}
	pinned := map[string]string{"office: collabora": "office: steps", "  dataPolicy: Retain\n": "  dataPolicy: Retain\n  versions: {steps: 2.0.0}\n"}
	migrations := migrationJob("prepare", "pre", "") + migrationJob("convert", "post", "") + migrationJob("cleanup", "post", "")
	files := stepsWithMigrations(t, true, migrations)
	e.reconcile(e.plan(e.workplaceDir(pinned, files)))
	if jobs := e.migrationJobs("demo-steps"); len(jobs) != 0 {
		t.Fatalf("a first install ran migrations: %v", slices.Collect(maps.Keys(jobs)))
	}
	stopFailing := cluster.FromTest(t).FailJobPods(t, e.ns, "demo-steps-convert-")

	p := e.plan(e.workplaceDir(office, files))
	rep := e.reconcileMayFail(p)
	var out release.Outcome
	for _, o := range rep.Result.Outcomes {
		if o.Component == "steps" {
			out = o
		}
	}
	if out.Failure != release.FailureRolledBack || out.Version != "2.0.0" || !out.Ready {
		t.Fatalf("outcome %+v: want rolled back to 2.0.0 and ready", out)
	}
	if len(out.Backups) != 1 || out.Backups[0].Version != "3.0.0" {
		t.Fatalf("backups %+v: want one taken before 3.0.0", out.Backups)
	}
	for _, w := range []string{"post-migration convert of version 3.0.0 failed", "kubectl -n " + e.ns + " logs job/demo-steps-convert-",
		"platzwart restore " + out.Backups[0].Job + " -n " + e.ns, "stopped at step 1 of 1 (version 3.0.0)"} {
		if !strings.Contains(out.Err, w) {
			t.Errorf("the failure does not say %q:\n%s", w, out.Err)
		}
	}
	jobs := e.migrationJobs("demo-steps")
	state := func(name string) string {
		j, ok := jobs[name]
		if !ok {
			return "absent"
		}
		if done, failed := jobState(j); done {
			return "complete"
		} else if failed {
			return "failed"
		}
		return "running"
	}
	if state("prepare") != "complete" || state("convert") != "failed" || state("cleanup") != "absent" {
		t.Errorf("migrations: prepare %s, convert %s, cleanup %s; want complete, failed, absent", state("prepare"), state("convert"), state("cleanup"))
	}
	hist := e.history("demo-steps")
	if want := []string{"2.0.0 ready", "3.0.0 unready", "2.0.0 ready"}; !slices.Equal(hist, want) {
		t.Errorf("revisions %v, want %v (the step to 3.0.0 rolled back)", hist, want)
	}
	if _, err := e.cluster.Clientset.BatchV1().Jobs(e.ns).Get(t.Context(), out.Backups[0].Job, metav1.GetOptions{}); err != nil {
		t.Errorf("the backup Job is gone: %v", err)
	}

	// While the failed Job is there, the step is not tried again.
	e.count.reset()
	rep = e.reconcileMayFail(p)
	for _, o := range rep.Result.Outcomes {
		if o.Component == "steps" && (o.Err == "" || !strings.Contains(o.Err, "delete the Job to run the migration again") || len(o.Backups) != 0) {
			t.Errorf("second reconcile: %+v; want the failed migration reported, no backup", o)
		}
	}
	if got := e.history("demo-steps"); !slices.Equal(got, hist) {
		t.Errorf("revisions after the second reconcile %v, want %v unchanged", got, hist)
	}

	// Deleting the failed Job (and no longer failing its pods) lets the step run again.
	if err := e.cluster.Clientset.BatchV1().Jobs(e.ns).Delete(t.Context(), jobs["convert"].Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	stopFailing()
	rep = e.reconcile(p)
	if got := actions(rep)["steps"]; got != release.ActionUpgrade {
		t.Errorf("after deleting the failed Job, steps was %s, want upgraded", got)
	}
	jobs = e.migrationJobs("demo-steps")
	if state("convert") != "complete" || state("cleanup") != "complete" {
		t.Errorf("after the retry: convert %s, cleanup %s; want both complete", state("convert"), state("cleanup"))
	}
	if got := e.versionLabel("demo-steps"); got != "3.0.0" {
		t.Errorf("version after the retry %s, want 3.0.0", got)
	}
	// The retry is a new attempt after a rollback: its pre-migration ran again.
	list, err := e.cluster.Clientset.BatchV1().Jobs(e.ns).List(t.Context(), metav1.ListOptions{LabelSelector: release.LabelMigration + "=prepare"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Errorf("%d Jobs of the pre-migration prepare, want 2 (the first attempt's and the retry's)", len(list.Items))
	}
}

// jobState reports whether a Job completed or failed.
func jobState(j *batchv1.Job) (complete, failed bool) {
	for _, c := range j.Status.Conditions {
		if c.Status == corev1.ConditionTrue && c.Type == batchv1.JobComplete {
			complete = true
		}
		if c.Status == corev1.ConditionTrue && c.Type == batchv1.JobFailed {
			failed = true
		}
	}
	return complete, failed
}

// TestPathResumesAfterKill kills `platzwart apply` twice on a path 1.0.0 → 2.0.0 →
// 3.0.0: first while the pre-migration of the step to 3.0.0 waits for a node, then
// while its post-migration does. Each run resumes where the one before stopped:
// the stepping stone 2.0.0 is not upgraded to again and its backup not taken
// again, each migration Job is created once and waited for by the next run, and
// the upgraded revision becomes ready only once its post-migration completed.
func TestPathResumesAfterKill(t *testing.T) {
	e := newEnv(t)
	bin := buildCLI(t)
	office := map[string]string{"office: collabora": "office: steps"}
	pinned := map[string]string{"office: collabora": "office: steps", "  dataPolicy: Retain\n": "  dataPolicy: Retain\n  versions: {steps: 1.0.0}\n"}
	prepare, finish := "platzwart.io/prepare-"+e.ns, "platzwart.io/finish-"+e.ns
	gate := func(label string) string {
		return "\n                nodeSelector: {\"" + label + "\": \"yes\"}"
	}
	files := stepsWithMigrations(t, false, migrationJob("prepare", "pre", gate(prepare))+migrationJob("finish", "post", gate(finish)))
	e.reconcile(e.plan(e.workplaceDir(pinned, files)))
	dir := e.workplaceDir(office, files)

	kill := func(until string) {
		t.Helper()
		cmd, _ := applyUntil(t, bin, dir, func(line string) bool { return strings.Contains(line, until) && strings.HasSuffix(line, " created") })
		if cmd == nil {
			t.Fatalf("apply ended before %q", until)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}

	kill("pre-migration prepare of version 3.0.0: Job")
	if got, want := e.history("demo-steps"), []string{"1.0.0 ready", "2.0.0 ready"}; !slices.Equal(got, want) {
		t.Fatalf("revisions after the first kill %v, want %v", got, want)
	}
	first := e.migrationJobs("demo-steps")
	if first["prepare"] == nil {
		t.Fatal("the pre-migration Job was not created before the kill")
	}

	labelNode(t, e, prepare)
	kill("post-migration finish of version 3.0.0: Job")
	if got, want := e.history("demo-steps"), []string{"1.0.0 ready", "2.0.0 ready", "3.0.0 unready"}; !slices.Equal(got, want) {
		t.Fatalf("revisions after the second kill %v, want %v (3.0.0 not ready before its post-migration)", got, want)
	}
	second := e.migrationJobs("demo-steps")
	if second["prepare"] == nil || second["prepare"].UID != first["prepare"].UID {
		t.Errorf("the pre-migration Job was created again after the kill")
	}
	if done, _ := jobState(second["prepare"]); !done {
		t.Errorf("the second run went on before the pre-migration completed")
	}

	labelNode(t, e, finish)
	rep := e.reconcile(e.plan(dir))
	if got, want := e.history("demo-steps"), []string{"1.0.0 ready", "2.0.0 ready", "3.0.0 ready"}; !slices.Equal(got, want) {
		t.Errorf("revisions after resuming %v, want %v (no step taken twice)", got, want)
	}
	third := e.migrationJobs("demo-steps")
	if third["finish"] == nil || third["finish"].UID != second["finish"].UID {
		t.Errorf("the post-migration Job was created again after the kill")
	}
	if done, _ := jobState(third["finish"]); !done {
		t.Errorf("the post-migration did not complete: %+v", third["finish"].Status)
	}
	for _, o := range rep.Result.Outcomes {
		if o.Component == "steps" && (o.Version != "3.0.0" || !o.Ready) {
			t.Errorf("outcome %+v, want ready at 3.0.0", o)
		}
	}
	backups, err := e.cluster.Clientset.BatchV1().Jobs(e.ns).List(t.Context(), metav1.ListOptions{LabelSelector: release.LabelBackupOf + "=demo-steps"})
	if err != nil {
		t.Fatal(err)
	}
	if len(backups.Items) != 1 {
		t.Errorf("%d backup Jobs, want one (before 2.0.0, not taken again on resuming)", len(backups.Items))
	}
}

// positions returns the positions of the events of a release and step whose message
// starts with prefix, in order.
func (l *eventLog) positions(rel, step, prefix string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for i, e := range l.events {
		if e.Release == rel && e.Step == step && strings.HasPrefix(e.Message, prefix) {
			out = append(out, i)
		}
	}
	return out
}

// TestPostgresMajorUpgradeOrder installs the example with PostgreSQL pinned to 17.9,
// then lets it follow 18.6: the step stops every consumer (Keycloak, Synapse,
// Nextcloud, ...) before it dumps each consumer database with the 17 server's image,
// upgrades, then restores the databases in the post-migration restore-databases and
// only then gives the consumers their replicas back. kwok runs no container: that
// the data survives is shown against a real server in reconciler/backup
// (TestRestoreMajor, TestDataDirectory); here, the order.
func TestPostgresMajorUpgradeOrder(t *testing.T) {
	e := newEnv(t)
	e.reconcile(e.plan(e.workplaceDir(map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n  versions: {postgresql: \"17.9\"}\n"}, nil)))
	if got := e.versionLabel("demo-postgresql"); got != "17.9" {
		t.Fatalf("version after the pinned install %q, want 17.9", got)
	}
	sts, err := e.cluster.Clientset.AppsV1().StatefulSets(e.ns).Get(t.Context(), "demo-postgresql", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldImage := sts.Spec.Template.Spec.Containers[0].Image
	replicas := map[string]int32{}
	deps, err := e.cluster.Clientset.AppsV1().Deployments(e.ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		replicas[d.Name] = *d.Spec.Replicas
	}

	e.events.reset()
	p := e.plan(e.workplaceDir(nil, nil))
	rep := e.reconcile(p)
	if got := e.versionLabel("demo-postgresql"); got != "18.6" {
		t.Fatalf("version after the step %q, want 18.6", got)
	}
	var out release.Outcome
	for _, o := range rep.Result.Outcomes {
		if o.Component == "postgresql" {
			out = o
		}
	}
	var pg *plan.Release
	for _, r := range p.Releases {
		if r.Component == "postgresql" {
			pg = r
		}
	}
	if len(pg.Databases) < 3 || len(out.Backups) != len(pg.Databases) {
		t.Fatalf("backups %+v of databases %+v: want one per consumer database", out.Backups, pg.Databases)
	}
	stops := e.events.positions("demo-postgresql", "stop", "consumer ")
	backups := e.events.positions("demo-postgresql", "backup", "database ")
	upgrade := e.events.positions("demo-postgresql", "path", "step 1 of 1: version 18.6: upgrade")
	restore := e.events.positions("demo-postgresql", "migration", "post-migration restore-databases of version 18.6")
	starts := e.events.positions("demo-postgresql", "start", "consumer ")
	if len(stops) == 0 || len(backups) == 0 || len(upgrade) != 1 || len(restore) == 0 || len(starts) != len(stops) {
		t.Fatalf("events: stops %v, backups %v, upgrade %v, restore %v, starts %v", stops, backups, upgrade, restore, starts)
	}
	if slices.Max(stops) > backups[0] || slices.Max(backups) > upgrade[0] || upgrade[0] > restore[0] || slices.Max(restore) > starts[0] {
		t.Errorf("order: stops %v, backups %v, upgrade %v, restore %v, starts %v; want stop < backup < upgrade < restore < start", stops, backups, upgrade, restore, starts)
	}
	// The dumps were taken by the 17 server's image (pg_dump of the server's major).
	for _, b := range out.Backups {
		job, err := e.cluster.Clientset.BatchV1().Jobs(e.ns).Get(t.Context(), b.Job, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := job.Spec.Template.Spec.Containers[0].Image; img != oldImage {
			t.Errorf("backup %s ran %s, want the 17 server's %s", b.Job, img, oldImage)
		}
	}
	jobs := e.migrationJobs("demo-postgresql")
	if j := jobs["restore-databases"]; j == nil {
		t.Error("no restore-databases Job")
	} else if done, _ := jobState(j); !done {
		t.Errorf("restore-databases did not complete: %+v", j.Status)
	}
	// Every consumer is back at its replicas, the record gone.
	deps, err = e.cluster.Clientset.AppsV1().Deployments(e.ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		if want, ok := replicas[d.Name]; ok && (*d.Spec.Replicas != want || d.Annotations[workload.AnnotationStoppedReplicas] != "") {
			t.Errorf("Deployment %s: %d replicas, record %q; want %d and none", d.Name, *d.Spec.Replicas, d.Annotations[workload.AnnotationStoppedReplicas], want)
		}
	}
	// The next reconcile changes nothing and stops nobody.
	e.events.reset()
	rep = e.reconcile(p)
	if got := actions(rep)["postgresql"]; got != release.ActionUnchanged {
		t.Errorf("after the step postgresql is %s, want unchanged", got)
	}
	if n := len(e.events.positions("demo-postgresql", "stop", "")); n != 0 {
		t.Errorf("%d consumers stopped on a reconcile without a step", n)
	}
}
