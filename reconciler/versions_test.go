package reconciler_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/upgrade"
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
	if _, err := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(e.ns).Get(t.Context(), "demo-backups", metav1.GetOptions{}); err != nil {
		t.Errorf("the backup claim: %v", err)
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
