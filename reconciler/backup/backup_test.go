package backup_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/platzwart/platzwart/e2e/pgtest"
	"github.com/platzwart/platzwart/reconciler/backup"
)

// scripts renders the example's postgresql release and returns backup.sh and
// restore.sh from its backup ConfigMap.
func scripts(t *testing.T) (backupSh, restoreSh string) {
	t.Helper()
	rel, objs := pgtest.ExampleRelease(t, "../../examples/workplace")
	data := pgtest.ConfigMapData(t, objs, rel.Name+"-backup")
	if data["backup.sh"] == "" || data["restore.sh"] == "" {
		t.Fatalf("ConfigMap %s-backup lacks backup.sh or restore.sh", rel.Name)
	}
	return data["backup.sh"], data["restore.sh"]
}

// script runs a chart script with the superuser's libpq environment and the server's
// client tools first on PATH.
func script(t *testing.T, s *pgtest.Server, body string, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", body)
	cmd.Env = append(append([]string{"PATH=" + s.Bin + ":/usr/bin:/bin"}, s.Env("admin", "admin-Secret-1", "postgres")...), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

const fingerprint = `SELECT count(*) || ':' || md5(string_agg(id || '|' || title || '|' || body, ',' ORDER BY id)) FROM notes`

// TestBackupVerifyRestore runs the postgresql chart's backup and restore scripts, as
// rendered for the example, against a real PostgreSQL server: a consumer's database
// (its own role, a table with an index, a sequence and non-ASCII text) is dumped and
// verified, the record names the file with its size and checksum; the data is then
// changed and the dump restored: the database has the dumped data again, owned by the
// consumer's role, which still logs in with its password, and the changed database is
// kept beside it. A truncated dump is refused before anything changes, and a backup
// never overwrites an existing one.
func TestBackupVerifyRestore(t *testing.T) {
	backupSh, restoreSh := scripts(t)
	s := pgtest.Start(t, "admin", "admin-Secret-1")
	s.Query(t, "postgres", `CREATE ROLE app LOGIN PASSWORD 'app-Secret-2'`)
	s.Query(t, "postgres", `CREATE DATABASE app OWNER app TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`)
	if err := s.Login(t.Context(), "app", "app-Secret-2", "app"); err != nil {
		t.Fatal(err)
	}
	setup := exec.CommandContext(t.Context(), "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", `
CREATE TABLE notes (id bigserial PRIMARY KEY, title text NOT NULL, body text);
CREATE INDEX notes_title ON notes (title);
INSERT INTO notes (title, body) SELECT 'Notiz ' || i, 'Grüße aus Köln – ' || repeat('ä', i % 50) FROM generate_series(1, 5000) i;`)
	setup.Env = append(os.Environ(), s.Env("app", "app-Secret-2", "app")...)
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	want := s.Query(t, "app", fingerprint)

	dir := t.TempDir()
	recordFile := filepath.Join(t.TempDir(), "termination-log")
	out, err := script(t, s, backupSh, "BACKUP_DATABASE=app", "BACKUP_DIR="+dir, "BACKUP_NAME=app-before-upgrade", "BACKUP_RECORD_FILE="+recordFile)
	if err != nil {
		t.Fatalf("backup.sh: %v\n%s", err, out)
	}
	// The record also goes to BACKUP_RECORD_FILE (the Job's termination message).
	if written, err := os.ReadFile(recordFile); err != nil || !strings.HasSuffix(strings.TrimSpace(out), strings.TrimSpace(string(written))) || len(written) < 10 {
		t.Errorf("record file %q (%v), want the last line of the output", written, err)
	}
	if strings.Contains(out, "admin-Secret-1") || strings.Contains(out, "app-Secret-2") {
		t.Errorf("backup.sh printed a password:\n%s", out)
	}
	rec, err := backup.ParseRecord([]byte(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rec.Database != "app" || rec.File != "app-before-upgrade.dump" || rec.Entries == 0 {
		t.Errorf("record %+v", rec)
	}
	dump := filepath.Join(dir, rec.File)
	data, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != rec.SHA256 || int64(len(data)) != rec.Bytes {
		t.Errorf("the record's size %d and checksum %s do not match the file (%d bytes)", rec.Bytes, rec.SHA256, len(data))
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(left) > 0 {
		t.Errorf("partial files left: %v", left)
	}
	if out, err := script(t, s, backupSh, "BACKUP_DATABASE=app", "BACKUP_DIR="+dir, "BACKUP_NAME=app-before-upgrade"); err == nil {
		t.Errorf("a second backup with the same name overwrote the first:\n%s", out)
	}

	// What an upgrade gone wrong might leave.
	s.Query(t, "app", `DELETE FROM notes WHERE id % 2 = 0; UPDATE notes SET body = 'kaputt'`)
	changed := s.Query(t, "app", fingerprint)

	// A truncated dump is refused and changes nothing.
	truncated := filepath.Join(dir, "truncated.dump")
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := script(t, s, restoreSh, "RESTORE_FILE="+truncated, "RESTORE_DATABASE=app"); err == nil {
		t.Errorf("restore.sh accepted a truncated dump:\n%s", out)
	}
	if got := s.Query(t, "app", fingerprint); got != changed {
		t.Fatalf("a refused restore changed the database: %s, was %s", got, changed)
	}

	out, err = script(t, s, restoreSh, "RESTORE_FILE="+dump, "RESTORE_DATABASE=app")
	if err != nil {
		t.Fatalf("restore.sh: %v\n%s", err, out)
	}
	if got := s.Query(t, "app", fingerprint); got != want {
		t.Errorf("after the restore: %s, want the dumped data %s", got, want)
	}
	if owner := s.Query(t, "app", `SELECT tableowner FROM pg_tables WHERE tablename = 'notes'`); owner != "app" {
		t.Errorf("the restored table is owned by %q, want app", owner)
	}
	if err := s.Login(t.Context(), "app", "app-Secret-2", "app"); err != nil {
		t.Errorf("the consumer cannot log in to the restored database: %v", err)
	}
	insert := exec.CommandContext(t.Context(), "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", `INSERT INTO notes (title) VALUES ('after restore')`)
	insert.Env = append(os.Environ(), s.Env("app", "app-Secret-2", "app")...)
	if out, err := insert.CombinedOutput(); err != nil {
		t.Errorf("the consumer cannot write (sequence and table after the restore): %v\n%s", err, out)
	}
	kept := s.Query(t, "postgres", `SELECT datname FROM pg_database WHERE datname LIKE 'app\_before\_%'`)
	if kept == "" {
		t.Fatal("the replaced database was not kept")
	}
	s.Query(t, "postgres", `ALTER DATABASE "`+kept+`" WITH ALLOW_CONNECTIONS true`)
	if got := s.Query(t, kept, fingerprint); got != changed {
		t.Errorf("the kept database %s has %s, want the data it had before the restore %s", kept, got, changed)
	}
}

func TestParseRecordRefusesWhatIsNotARecord(t *testing.T) {
	for _, out := range []string{
		"",
		"pg_dump: error: connection failed",
		`{"database":"app","file":"../x.dump","bytes":1,"sha256":"` + strings.Repeat("a", 64) + `","entries":1,"started":"2026-01-01T00:00:00Z","finished":"2026-01-01T00:00:01Z"}`,
		`{"database":"app","file":"x.dump","bytes":0,"sha256":"` + strings.Repeat("a", 64) + `","entries":1,"started":"2026-01-01T00:00:00Z","finished":"2026-01-01T00:00:01Z"}`,
		`{"database":"app","file":"x.dump","bytes":1,"sha256":"abc","entries":1,"started":"2026-01-01T00:00:00Z","finished":"2026-01-01T00:00:01Z"}`,
		`{"database":"app","file":"x.dump","bytes":1,"sha256":"` + strings.Repeat("a", 64) + `","entries":1,"started":"2026-01-01T00:00:02Z","finished":"2026-01-01T00:00:01Z"}`,
	} {
		if r, err := backup.ParseRecord([]byte(out)); err == nil {
			t.Errorf("%q parsed as %+v", out, r)
		}
	}
}
