package backup_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/platzwart/platzwart/e2e/pgtest"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/postrender"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/render"
	"github.com/platzwart/platzwart/reconciler/upgrade"
)

// The PostgreSQL major upgrade (components/postgresql, version 18.6): the chart's
// init container data-directory and the post-migration restore-databases, run
// against real data directories and real servers. Only one PostgreSQL major
// (Debian's, 15 here) is installed on this machine, so the cross-major part (a dump
// by pg_dump 17 restored by pg_restore 18, a cluster initialised by 18's initdb) is
// not shown: "17" and "18" below are the image's PG_MAJOR and PGDATA as the scripts
// see them, and both servers of TestRestoreMajor run the same major.

// majorScripts returns the scripts ConfigMap of the example's postgresql release.
func majorScripts(t *testing.T) (*plan.Release, []*postrender.Object, map[string]string) {
	t.Helper()
	rel, objs := pgtest.ExampleRelease(t, "../../examples/workplace")
	data := pgtest.ConfigMapData(t, objs, rel.Name+"-backup")
	for _, k := range []string{"data-directory.sh", "restore-major.sh", "restore.sh", "backup.sh"} {
		if data[k] == "" {
			t.Fatalf("ConfigMap %s-backup lacks %s", rel.Name, k)
		}
	}
	return rel, objs, data
}

// writeScripts writes the scripts as the ConfigMap volume holds them, in a directory
// the server's user can read.
func writeScripts(t *testing.T, s *pgtest.Server, data map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if s != nil {
		dir = s.TempDir(t)
	}
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// asServer runs a shell command as the server's user (the owner of its data
// directory, as uid 999 is in the pod).
func asServer(t *testing.T, s *pgtest.Server, script string, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := s.Command(ctx, "/bin/sh", "-c", script)
	cmd.Env = append([]string{"PATH=" + s.Bin + ":/usr/bin:/bin"}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// dataDirectory runs data-directory.sh with the image's PGDATA and PG_MAJOR and the
// volume at root.
func dataDirectory(t *testing.T, s *pgtest.Server, scripts, root, major, pgdata string) (string, error) {
	t.Helper()
	return asServer(t, s, `exec /bin/sh "$SCRIPTS/data-directory.sh"`,
		"SCRIPTS="+scripts, "PG_DATA_ROOT="+root, "PG_MAJOR="+major, "PGDATA="+pgdata)
}

// tree lists the paths below root; a directory holding a cluster (a PG_VERSION file)
// is listed as <dir>=<its PG_VERSION>, without its contents.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if !d.IsDir() {
			out = append(out, rel)
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "PG_VERSION"))
		if err != nil {
			out = append(out, rel)
			return nil
		}
		out = append(out, rel+"="+strings.TrimSpace(string(b)))
		return filepath.SkipDir
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func pgVersion(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "PG_VERSION"))
	if err != nil {
		t.Fatalf("%s holds no cluster: %v", dir, err)
	}
	return strings.TrimSpace(string(b))
}

// moves counts the script's lines reporting a move.
func moves(out string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "moved ") {
			n++
		}
	}
	return n
}

// TestDataDirectory runs the init container's script, as rendered for the example, on
// a real cluster (initdb by the harness at <root>/data, where the 17 image keeps it by
// default), as the server's user:
//   - the 18 image starts (PG_MAJOR 18, PGDATA <root>/18/docker, an empty directory a
//     failed start left): the cluster and another major's directory are moved to
//     kept-<their PG_VERSION>, PGDATA stays as it was;
//   - a rollback (PG_MAJOR = the cluster's, PGDATA <root>/data): the cluster is moved
//     back, only it, and the real server starts on it with its data intact;
//   - run again with this major's data in place: nothing moves.
func TestDataDirectory(t *testing.T) {
	_, _, data := majorScripts(t)
	s := pgtest.Start(t, "admin", "admin-Secret-1")
	s.Query(t, "postgres", `CREATE TABLE kept (id int PRIMARY KEY, note text); INSERT INTO kept SELECT i, 'Zeile ' || i FROM generate_series(1, 1000) i`)
	const sum = `SELECT count(*) || ':' || md5(string_agg(id || note, ',' ORDER BY id)) FROM kept`
	want := s.Query(t, "postgres", sum)
	s.StopServer(t)
	scripts := writeScripts(t, s, data)
	root := s.Dir
	major := pgVersion(t, s.DataDir())
	if out, err := asServer(t, s, `mkdir -p "$R/16/docker" "$R/18/docker" && echo 16 > "$R/16/docker/PG_VERSION" && echo a > "$R/16/docker/marker"`, "R="+root); err != nil {
		t.Fatalf("fixture: %v\n%s", err, out)
	}

	// The new major starts.
	out, err := dataDirectory(t, s, scripts, root, "18", filepath.Join(root, "18", "docker"))
	if err != nil {
		t.Fatalf("data-directory.sh on 18: %v\n%s", err, out)
	}
	t.Logf("18 starts:\n%s", out)
	if moves(out) != 2 {
		t.Errorf("want one line per move, two moves:\n%s", out)
	}
	kept := filepath.Join(root, "kept-"+major)
	if exists(s.DataDir()) || pgVersion(t, kept) != major || pgVersion(t, filepath.Join(root, "kept-16")) != "16" || !exists(filepath.Join(root, "kept-16", "marker")) {
		t.Errorf("after the 18 start: %v; want data and 16/docker moved to kept-%s and kept-16", tree(t, root), major)
	}
	if entries, err := os.ReadDir(filepath.Join(root, "18", "docker")); err != nil || len(entries) != 0 {
		t.Errorf("PGDATA of 18: %v, %v; want it untouched, empty", entries, err)
	}

	// A rollback: this major's data comes back.
	out, err = dataDirectory(t, s, scripts, root, major, s.DataDir())
	if err != nil {
		t.Fatalf("data-directory.sh on %s: %v\n%s", major, err, out)
	}
	t.Logf("%s starts again:\n%s", major, out)
	if moves(out) != 1 || exists(kept) || pgVersion(t, s.DataDir()) != major || !exists(filepath.Join(root, "kept-16")) {
		t.Errorf("after the rollback: %v\n%s\nwant kept-%s back at data, kept-16 left", tree(t, root), out, major)
	}

	// This major's data in place: nothing moves.
	before := tree(t, root)
	out, err = dataDirectory(t, s, scripts, root, major, s.DataDir())
	if err != nil || moves(out) != 0 || !slices.Equal(tree(t, root), before) {
		t.Errorf("with the data in place: %v\n%s\nmoved something: %v", err, out, tree(t, root))
	}

	s.StartServer(t)
	if got := s.Query(t, "postgres", sum); got != want {
		t.Errorf("the server on the data moved back: %s, want %s", got, want)
	}
	if err := s.Login(t.Context(), "admin", "admin-Secret-1", "postgres"); err != nil {
		t.Errorf("the superuser cannot log in after the moves: %v", err)
	}
}

// TestDataDirectoryRefuses: every refusal exits 1 with a message naming the
// directories and moves nothing, not even the directories whose target is free.
func TestDataDirectoryRefuses(t *testing.T) {
	_, _, data := majorScripts(t)
	s := pgtest.Start(t, "admin", "admin-Secret-1")
	s.StopServer(t)
	scripts := writeScripts(t, s, data)
	for _, tc := range []struct {
		name    string
		fixture string // shell, $R is the root
		major   string
		pgdata  string // below $R
		want    []string
	}{
		{"the target exists", `mkdir -p "$R/data" "$R/kept-17" && echo 17 > "$R/data/PG_VERSION"`, "18", "18/docker",
			[]string{"/data holds PostgreSQL 17 data", "/kept-17 exists already", "nothing was moved"}},
		{"one of two targets exists", `mkdir -p "$R/data" "$R/16/docker" "$R/kept-16" && echo 17 > "$R/data/PG_VERSION" && echo 16 > "$R/16/docker/PG_VERSION"`, "18", "18/docker",
			[]string{"/16/docker holds PostgreSQL 16 data", "/kept-16 exists already"}},
		{"two directories of one major", `mkdir -p "$R/data" "$R/17/docker" && echo 17 > "$R/data/PG_VERSION" && echo 17 > "$R/17/docker/PG_VERSION"`, "18", "18/docker",
			[]string{"/17/docker and another directory both hold PostgreSQL 17 data", "nothing was moved"}},
		{"data at the volume's root", `echo 17 > "$R/PG_VERSION"`, "18", "18/docker",
			[]string{"itself holds PostgreSQL 17 data"}},
		{"a PGDATA in the way of taking the data back", `mkdir -p "$R/kept-17" "$R/17/docker" && echo 17 > "$R/kept-17/PG_VERSION" && echo x > "$R/17/docker/half-initialised"`, "17", "17/docker",
			[]string{"/kept-17 holds PostgreSQL 17 data to take back", "/17/docker is not empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := s.TempDir(t)
			if out, err := asServer(t, s, tc.fixture, "R="+root); err != nil {
				t.Fatalf("fixture: %v\n%s", err, out)
			}
			before := tree(t, root)
			out, err := dataDirectory(t, s, scripts, root, tc.major, filepath.Join(root, tc.pgdata))
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("exit %v, want 1:\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("the message lacks %q:\n%s", w, out)
				}
			}
			if after := tree(t, root); !slices.Equal(after, before) {
				t.Errorf("a refusal moved something: %v, was %v", after, before)
			}
		})
	}

	// Taking the data back into an empty PGDATA (left by a failed start) works.
	root := s.TempDir(t)
	if out, err := asServer(t, s, `mkdir -p "$R/kept-17" "$R/17/docker" && echo 17 > "$R/kept-17/PG_VERSION"`, "R="+root); err != nil {
		t.Fatalf("fixture: %v\n%s", err, out)
	}
	if out, err := dataDirectory(t, s, scripts, root, "17", filepath.Join(root, "17", "docker")); err != nil || pgVersion(t, filepath.Join(root, "17", "docker")) != "17" || exists(filepath.Join(root, "kept-17")) {
		t.Errorf("taking kept-17 back into an empty PGDATA: %v\n%s\n%v", err, out, tree(t, root))
	}
}

const (
	notesSum = `SELECT count(*) || ':' || md5(string_agg(id || '|' || title || '|' || coalesce(body, ''), ',' ORDER BY id)) FROM notes`
	pagesSum = `SELECT (SELECT count(*) FROM titles) || ':' || md5(string_agg(slug || '|' || body, ',' ORDER BY slug)) FROM pages`
)

// consumer is a consumer's database and role with its password (the consumer's Secret).
type consumer struct{ db, user, collation, password string }

// exampleConsumers are the databases the example's postgresql release provisions,
// each with a password of its own.
func exampleConsumers(t *testing.T, rel *plan.Release) []consumer {
	t.Helper()
	var out []consumer
	list, _ := rel.Values["databases"].([]any)
	for i, d := range list {
		m := d.(map[string]any)
		coll, _ := m["collation"].(string)
		out = append(out, consumer{db: m["database"].(string), user: m["user"].(string), collation: coll,
			password: fmt.Sprintf("%s'Secret\"%d", m["user"], i)})
	}
	if len(out) < 3 {
		t.Fatalf("the example's postgresql release provisions %d databases; want 3 or more", len(out))
	}
	return out
}

// provision runs the chart's provisioning script (what the hook Job runs on every
// install and upgrade) for the consumers against s.
func provision(t *testing.T, s *pgtest.Server, script string, consumers []consumer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "provision.sh")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", path)
	cmd.Env = append(append(os.Environ(), s.Env("admin", "admin-Secret-1", "postgres")...), "WAIT_SECONDS=30")
	for i, c := range consumers {
		cmd.Env = append(cmd.Env, fmt.Sprintf("DB_%d_NAME=%s", i, c.db), fmt.Sprintf("DB_%d_USER=%s", i, c.user),
			fmt.Sprintf("DB_%d_COLLATION=%s", i, c.collation), fmt.Sprintf("DB_%d_PASSWORD=%s", i, c.password))
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("provision.sh: %v\n%s", err, out)
	}
}

// asConsumer runs SQL as a consumer's role over TCP.
func asConsumer(t *testing.T, s *pgtest.Server, c consumer, sql string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "psql", "-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-c", sql)
	cmd.Env = append(os.Environ(), s.Env(c.user, c.password, c.db)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// runFile runs a script file of the ConfigMap with the superuser's libpq environment
// and the server's client tools first on PATH.
func runFile(t *testing.T, s *pgtest.Server, path string, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", path)
	cmd.Env = append(append([]string{"PATH=" + s.Bin + ":/usr/bin:/bin"}, s.Env("admin", "admin-Secret-1", "postgres")...), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// restoreMigration returns the release's restore-databases migration and its
// container's environment.
func restoreMigration(t *testing.T, rel *plan.Release) (*plan.Migration, map[string]corev1.EnvVar) {
	t.Helper()
	for i := range rel.Migrations {
		m := &rel.Migrations[i]
		if m.Name != "restore-databases" || len(m.Job.Template.Spec.Containers) != 1 {
			continue
		}
		env := map[string]corev1.EnvVar{}
		for _, e := range m.Job.Template.Spec.Containers[0].Env {
			env[e.Name] = e
		}
		return m, env
	}
	t.Fatalf("release %s at %s has no migration restore-databases with one container: %+v", rel.Name, rel.Version, rel.Migrations)
	return nil, nil
}

// TestRestoreMajor walks the data path of a major upgrade with the chart's scripts and
// the migration's environment as rendered for the example: on server A (the old
// major) the example's consumer databases are provisioned, two get data, and each is
// dumped by backup.sh under the engine's name <db>-before-18.6-<stamp> (one twice, its
// data changed in between, with a dump for another version beside them); server B is
// a fresh initdb (the new major's empty cluster) on which the provisioning script
// creates the roles and empty databases, as the hook does on the upgrade;
// restore-major.sh, with the migration Job's RESTORE_DATABASES and RESTORE_VERSION,
// then restores each from its newest dump. B ends with A's data, every object owned
// by its consumer's role, which logs in with its password, reads and writes, and
// cannot connect to another consumer's database. A database without a dump fails the
// run, naming it, before anything is restored. Both servers run the same major here
// (see the top of this file).
func TestRestoreMajor(t *testing.T) {
	rel, objs, data := majorScripts(t)
	provisionSh := pgtest.ConfigMapData(t, objs, rel.Name+"-provision")["provision.sh"]
	_, env := restoreMigration(t, rel)
	consumers := exampleConsumers(t, rel)
	names := strings.Fields(env["RESTORE_DATABASES"].Value)
	for _, c := range consumers {
		if !slices.Contains(names, c.db) {
			t.Fatalf("RESTORE_DATABASES %v lacks %s", names, c.db)
		}
	}
	notes, wiki := consumers[0], consumers[1]

	a := pgtest.Start(t, "admin", "admin-Secret-1")
	provision(t, a, provisionSh, consumers)
	if out, err := asConsumer(t, a, notes, `
CREATE TABLE notes (id bigserial PRIMARY KEY, title text NOT NULL, body text);
CREATE INDEX notes_title ON notes (title);
INSERT INTO notes (title, body) SELECT 'Notiz ' || i, 'Grüße aus Köln – ' || repeat('ä', i % 40) FROM generate_series(1, 3000) i;`); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := asConsumer(t, a, wiki, `
CREATE TABLE pages (slug text PRIMARY KEY, body text NOT NULL);
CREATE VIEW titles AS SELECT slug FROM pages;
INSERT INTO pages SELECT 'seite-' || i, repeat('Ü', i % 30) FROM generate_series(1, 500) i;`); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	dumps := t.TempDir()
	backupSh := filepath.Join(writeScripts(t, nil, data), "backup.sh")
	dump := func(db, name string) {
		t.Helper()
		if out, err := runFile(t, a, backupSh, "BACKUP_DATABASE="+db, "BACKUP_DIR="+dumps, "BACKUP_NAME="+name); err != nil {
			t.Fatalf("backup.sh %s: %v\n%s", name, err, out)
		}
	}
	dump(notes.db, notes.db+"-before-18.6-20261201t101500")
	if out, err := asConsumer(t, a, notes, `DELETE FROM notes WHERE id % 3 = 0; INSERT INTO notes (title) VALUES ('written last')`); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, c := range consumers {
		dump(c.db, c.db+"-before-18.6-20261201t101501")
	}
	dump(notes.db, notes.db+"-before-18.7-20271201t000000") // another version's step
	want := []string{a.Query(t, notes.db, notesSum), a.Query(t, wiki.db, pagesSum)}

	b := pgtest.Start(t, "admin", "admin-Secret-1")
	provision(t, b, provisionSh, consumers)
	restore := filepath.Join(writeScripts(t, nil, data), "restore-major.sh")
	restoreEnv := []string{"RESTORE_DATABASES=" + env["RESTORE_DATABASES"].Value, "RESTORE_VERSION=" + env["RESTORE_VERSION"].Value, "BACKUP_DIR=" + dumps, "WAIT_SECONDS=10"}
	out, err := runFile(t, b, restore, restoreEnv...)
	t.Logf("restore-major.sh:\n%s", out)
	if err != nil {
		t.Fatalf("restore-major.sh: %v", err)
	}
	if !strings.Contains(out, notes.db+"-before-18.6-20261201t101501.dump") || strings.Contains(out, "20261201t101500") || strings.Contains(out, "18.7") {
		t.Errorf("%s was not restored from its newest dump before 18.6", notes.db)
	}
	if got := []string{b.Query(t, notes.db, notesSum), b.Query(t, wiki.db, pagesSum)}; !slices.Equal(got, want) {
		t.Errorf("server B after the restore: %v, want server A's %v", got, want)
	}
	for _, c := range []consumer{notes, wiki} {
		owners := b.Query(t, c.db, `SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',') FROM pg_class WHERE relnamespace = 'public'::regnamespace`)
		dbOwner := b.Query(t, "postgres", `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '`+c.db+`'`)
		if owners != c.user || dbOwner != c.user {
			t.Errorf("database %s owned by %q, its objects by %q; want %s", c.db, dbOwner, owners, c.user)
		}
	}
	for i, c := range consumers {
		if err := b.Login(t.Context(), c.user, c.password, c.db); err != nil {
			t.Errorf("consumer %s cannot log in after the restore: %v", c.user, err)
		}
		other := consumers[(i+1)%len(consumers)].db
		if err := b.Login(t.Context(), c.user, c.password, other); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("consumer %s connecting to %s's database after the restore: %v; want permission denied", c.user, other, err)
		}
	}
	if n, err := asConsumer(t, b, wiki, `SELECT count(*) FROM titles`); err != nil || n != "500" {
		t.Errorf("consumer %s reads %q (%v), want 500 titles", wiki.user, n, err)
	}
	if _, err := asConsumer(t, b, notes, `INSERT INTO notes (title) VALUES ('after the upgrade')`); err != nil {
		t.Errorf("consumer %s cannot write (table and sequence after the restore): %v", notes.user, err)
	}

	// A database without a dump: nothing is restored, the message names it.
	last := consumers[len(consumers)-1].db
	if err := os.Rename(filepath.Join(dumps, last+"-before-18.6-20261201t101501.dump"), filepath.Join(dumps, "elsewhere")); err != nil {
		t.Fatal(err)
	}
	const keptAside = `SELECT count(*) FROM pg_database WHERE datname LIKE '%\_before\_%'`
	before := b.Query(t, "postgres", keptAside)
	out, err = runFile(t, b, restore, restoreEnv...)
	if err == nil || !strings.Contains(out, "database(s): "+last) || strings.Contains(out, "restoring") {
		t.Errorf("a database without a dump: %v\n%s\nwant a failure naming %s before any restore", err, out, last)
	}
	if got := b.Query(t, "postgres", keptAside); got != before {
		t.Errorf("the failed run restored something: %s databases kept aside, was %s", got, before)
	}
}

// TestMajorUpgradeIsDeclared checks what the component renders for the upgrade
// against what the engine and the chart name: the 17.9 step keeps its data on the
// volume; the step to 18.6 from 17 carries restore-databases (stopping consumers) and
// a step within 18 does not; the migration's Job restores every database the engine
// backs up, from the engine's backup claim, with the 18.6 image, the scripts
// ConfigMap and the superuser Secret by reference, in the restricted security
// context, labelled so the server's NetworkPolicy admits it; and the StatefulSet's
// first init container is data-directory.
func TestMajorUpgradeIsDeclared(t *testing.T) {
	rel, objs, data := majorScripts(t)

	steps, err := rel.Path("17.2")
	if err != nil || len(steps) != 1 || steps[0].Version != "18.6" || !steps[0].Risky {
		t.Fatalf("path from 17.2: %v, %v; want one risky step to 18.6", steps, err)
	}
	var m *plan.Migration
	for i := range steps[0].Migrations {
		if steps[0].Migrations[i].Name == "restore-databases" {
			m = &steps[0].Migrations[i]
		}
	}
	if m == nil || m.Phase != "post" || !m.StopConsumers || !m.Applies("17.2") || m.Applies("18.1") {
		t.Fatalf("migration restore-databases %+v: want post, stopConsumers, from 17 only", m)
	}
	var noPath *upgrade.NoPathError
	if _, err := rel.Path("16.4"); !errors.As(err, &noPath) {
		t.Errorf("path from 16.4: %v; want a *upgrade.NoPathError (one major at a time)", err)
	}

	job := m.Job.Template.Spec
	if len(job.Containers) != 1 {
		t.Fatalf("containers %+v", job.Containers)
	}
	c := job.Containers[0]
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	var dbs []string
	for _, d := range rel.Databases {
		dbs = append(dbs, d.Name)
	}
	if len(dbs) == 0 || env["RESTORE_DATABASES"].Value != strings.Join(dbs, " ") {
		t.Errorf("RESTORE_DATABASES %q, want the databases the engine backs up %q", env["RESTORE_DATABASES"].Value, dbs)
	}
	if env["RESTORE_VERSION"].Value != "18.6" || env["PGHOST"].Value != rel.Name || env["PGUSER"].Value != "postgres" || env["BACKUP_DIR"].Value != "/backups" {
		t.Errorf("env %+v", env)
	}
	if p := env["PGPASSWORD"]; p.Value != "" || p.ValueFrom == nil || p.ValueFrom.SecretKeyRef == nil ||
		p.ValueFrom.SecretKeyRef.Name != rel.Name+"-admin" || p.ValueFrom.SecretKeyRef.Key != "password" {
		t.Errorf("PGPASSWORD %+v, want a reference to %s-admin/password", p, rel.Name)
	}
	if !slices.Contains(rel.Images, c.Image) || !strings.HasSuffix(c.Image, ":18.6-trixie") {
		t.Errorf("image %s, want the server's 18.6 image of %v", c.Image, rel.Images)
	}
	if !reflect.DeepEqual(c.Command, []string{"/bin/sh", "/scripts/restore-major.sh"}) {
		t.Errorf("command %v", c.Command)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range job.Volumes {
		volumes[v.Name] = v
	}
	if v := volumes["backups"].PersistentVolumeClaim; v == nil || v.ClaimName != release.BackupClaim(rel.Workplace) {
		t.Errorf("backups volume %+v, want the claim %s", v, release.BackupClaim(rel.Workplace))
	}
	if v := volumes["scripts"].ConfigMap; v == nil || v.Name != rel.Name+"-backup" || data["restore-major.sh"] == "" {
		t.Errorf("scripts volume %+v, want the ConfigMap %s-backup holding restore-major.sh", v, rel.Name)
	}
	sc, psc := c.SecurityContext, job.SecurityContext
	if sc == nil || psc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		psc.RunAsUser == nil || *psc.RunAsUser != 999 || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("security context %+v / pod %+v: want the backup Job's (uid 999, read-only root, no capabilities, RuntimeDefault)", sc, psc)
	}

	var sts appsv1.StatefulSet
	var np networkingv1.NetworkPolicy
	for _, o := range objs {
		switch o.Kind {
		case "StatefulSet":
			decode(t, o, &sts)
		case "NetworkPolicy":
			decode(t, o, &np)
		}
	}
	admitted := false
	for _, rule := range np.Spec.Ingress {
		for _, from := range rule.From {
			if sel := from.PodSelector; sel != nil && len(sel.MatchExpressions) == 0 && len(sel.MatchLabels) > 0 {
				matches := true
				for k, v := range sel.MatchLabels {
					matches = matches && m.Job.Template.Labels[k] == v
				}
				admitted = admitted || matches
			}
		}
	}
	if !admitted {
		t.Errorf("the Job's pod labels %v match no ingress rule of NetworkPolicy %s", m.Job.Template.Labels, np.Name)
	}
	init := sts.Spec.Template.Spec.InitContainers
	if len(init) < 2 || init[0].Name != "data-directory" || !reflect.DeepEqual(init[0].Command, []string{"/bin/sh", "/scripts/data-directory.sh"}) || init[1].Name != "superuser-password" {
		t.Errorf("init containers %v, want data-directory first, then superuser-password", names(init))
	}
}

// TestPostgres17KeepsItsDataOnTheVolume renders the 17.9 step: the 17 image with
// PGDATA below the volume's mount in every container (its own default,
// /var/lib/postgresql/data, is a VOLUME of the image that the container runtime backs
// with a scratch volume of its own).
func TestPostgres17KeepsItsDataOnTheVolume(t *testing.T) {
	rel, _ := pgtest.ExampleRelease(t, "../../examples/workplace")
	var old *plan.Release
	for _, e := range rel.Earlier() {
		if e.Version == "17.9" {
			old = e
		}
	}
	if old == nil || old.Risky {
		t.Fatalf("versions before 18.6: %v; want 17.9, not risky", rel.Earlier())
	}
	m, err := render.Release(t.Context(), old)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := m.Objects()
	if err != nil {
		t.Fatal(err)
	}
	var sts appsv1.StatefulSet
	for _, o := range objs {
		if o.Kind == "StatefulSet" {
			decode(t, o, &sts)
		}
	}
	spec := sts.Spec.Template.Spec
	all := append(slices.Clone(spec.InitContainers), spec.Containers...)
	if len(all) != 3 {
		t.Fatalf("containers %v", names(all))
	}
	for _, c := range all {
		pgdata := ""
		for _, e := range c.Env {
			if e.Name == "PGDATA" {
				pgdata = e.Value
			}
		}
		mounted := false
		for _, vm := range c.VolumeMounts {
			mounted = mounted || vm.Name == "data" && vm.MountPath == "/var/lib/postgresql"
		}
		if !strings.HasSuffix(c.Image, "/library/postgres:17.9-trixie") || pgdata != "/var/lib/postgresql/17/docker" || !mounted {
			t.Errorf("container %s: image %s, PGDATA %q, volume at /var/lib/postgresql %v; want 17.9, /var/lib/postgresql/17/docker on the volume", c.Name, c.Image, pgdata, mounted)
		}
	}
}

func decode(t *testing.T, o *postrender.Object, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Fields, into); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Name, err)
	}
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}
