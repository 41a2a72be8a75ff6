package secrets_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/platzwart/platzwart/e2e/pgtest"
)

// provisionScript renders the example's postgresql release and returns its
// provisioning script and the databases it provisions (name, user, collation).
func provisionScript(t *testing.T) (string, []map[string]any) {
	t.Helper()
	rel, objs := pgtest.ExampleRelease(t, "../../examples/workplace")
	script := pgtest.ConfigMapData(t, objs, rel.Name+"-provision")["provision.sh"]
	if script == "" {
		t.Fatalf("no provision.sh in ConfigMap %s-provision", rel.Name)
	}
	var dbs []map[string]any
	list, _ := rel.Values["databases"].([]any)
	for _, d := range list {
		dbs = append(dbs, d.(map[string]any))
	}
	if len(dbs) == 0 {
		t.Fatal("the postgresql release provisions no database")
	}
	return script, dbs
}

// TestProvisionScriptSetsTheNewPassword runs the postgresql chart's provisioning
// script, as rendered for the example, against a real PostgreSQL server twice: once
// with the first generated passwords, once with one password regenerated (a Secret
// deleted by hand, or rotated). After the second run the database accepts the new
// password and refuses the old one: the re-run provisioning heals the credential.
func TestProvisionScriptSetsTheNewPassword(t *testing.T) {
	script, dbs := provisionScript(t)
	const admin = "admin-password"
	s := pgtest.Start(t, "admin", admin)
	path := filepath.Join(t.TempDir(), "provision.sh")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	provision := func(passwords []string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/bin/sh", path)
		cmd.Env = append(append(os.Environ(), s.Env("admin", admin, "postgres")...), "WAIT_SECONDS=30")
		for i, d := range dbs {
			coll, _ := d["collation"].(string)
			cmd.Env = append(cmd.Env,
				fmt.Sprintf("DB_%d_NAME=%s", i, d["database"]), fmt.Sprintf("DB_%d_USER=%s", i, d["user"]),
				fmt.Sprintf("DB_%d_COLLATION=%s", i, coll), fmt.Sprintf("DB_%d_PASSWORD=%s", i, passwords[i]))
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("provision.sh: %v\n%s", err, out)
		}
		t.Logf("provision.sh:\n%s", out)
	}
	first := make([]string, len(dbs))
	for i := range dbs {
		first[i] = fmt.Sprintf("first-%d-Abc123", i)
	}
	provision(first)
	for i, d := range dbs {
		if err := s.Login(t.Context(), d["user"].(string), first[i], d["database"].(string)); err != nil {
			t.Fatalf("database %s after the first provisioning: %v", d["database"], err)
		}
	}
	// The first database's password Secret is regenerated.
	second := append([]string(nil), first...)
	second[0] = "regenerated-Xyz789"
	provision(second)
	usr, db := dbs[0]["user"].(string), dbs[0]["database"].(string)
	if err := s.Login(t.Context(), usr, second[0], db); err != nil {
		t.Errorf("the new password of %s is refused after provisioning again: %v", usr, err)
	}
	if err := s.Login(t.Context(), usr, first[0], db); err == nil {
		t.Errorf("the old password of %s is still accepted", usr)
	} else if !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("the old password of %s fails for another reason than the password: %v", usr, err)
	}
	for i := 1; i < len(dbs); i++ {
		if err := s.Login(t.Context(), dbs[i]["user"].(string), first[i], dbs[i]["database"].(string)); err != nil {
			t.Errorf("database %s, whose password did not change, refuses it now: %v", dbs[i]["database"], err)
		}
	}
}

// superuserScript renders the example's postgresql release and returns the script of
// the StatefulSet's init container that sets the superuser's password from the Secret.
func superuserScript(t *testing.T) string {
	t.Helper()
	_, objs := pgtest.ExampleRelease(t, "../../examples/workplace")
	for _, o := range objs {
		if o.Kind != "StatefulSet" {
			continue
		}
		var sts appsv1.StatefulSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Fields, &sts); err != nil {
			t.Fatal(err)
		}
		for _, c := range sts.Spec.Template.Spec.InitContainers {
			if c.Name == "superuser-password" && len(c.Command) == 3 && c.Command[1] == "-c" {
				return c.Command[2]
			}
		}
	}
	t.Fatal("no init container superuser-password with a /bin/sh -c script in the example's postgresql StatefulSet")
	return ""
}

// runSuperuserScript runs the init container's script on a data directory as the
// server's user, with the image's environment (PGDATA, postgres on PATH).
func runSuperuserScript(t *testing.T, s *pgtest.Server, pgdata, script, usr, password string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := s.Command(ctx, "/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=" + s.Bin + ":/usr/bin:/bin", "PGDATA=" + pgdata,
		"POSTGRES_USER=" + usr, "POSTGRES_PASSWORD=" + password}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSuperuserPasswordFollowsTheSecret runs the postgresql chart's init container
// script, as rendered for the example, against a real PostgreSQL data directory: the
// superuser Secret was regenerated (deleted by hand) after initdb had set the first
// password. After the script ran and the server started again, the new password is
// accepted and the old one refused, so the provisioning Job (which logs in as the
// superuser) keeps working: no lockout. Quotes and backslashes in the password are
// taken literally, and the password never appears in the script's output, not even
// when it fails.
func TestSuperuserPasswordFollowsTheSecret(t *testing.T) {
	script := superuserScript(t)
	const old = "first-Admin-123"
	s := pgtest.Start(t, "admin", old)
	if err := s.Login(t.Context(), "admin", old, "postgres"); err != nil {
		t.Fatalf("the first password: %v", err)
	}
	s.StopServer(t)

	regenerated := `new'Pass"word\with$(quotes)`
	out, err := runSuperuserScript(t, s, s.DataDir(), script, "admin", regenerated)
	if err != nil {
		t.Fatalf("init script: %v\n%s", err, out)
	}
	if strings.Contains(out, regenerated) || strings.Contains(out, "Pass") {
		t.Errorf("the init script printed the password:\n%s", out)
	}
	s.StartServer(t)
	if err := s.Login(t.Context(), "admin", regenerated, "postgres"); err != nil {
		t.Errorf("the regenerated password is refused: %v", err)
	}
	if err := s.Login(t.Context(), "admin", old, "postgres"); err == nil {
		t.Error("the old password is still accepted")
	} else if !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("the old password fails for another reason than the password: %v", err)
	}
	s.StopServer(t)

	// A failure (a superuser that does not exist) fails the container, without the
	// password in its output.
	out, err = runSuperuserScript(t, s, s.DataDir(), script, "nobody-here", "secret-Value-987")
	if err == nil {
		t.Errorf("the script succeeded for a role that does not exist:\n%s", out)
	}
	if strings.Contains(out, "secret-Value-987") {
		t.Errorf("the failing script printed the password:\n%s", out)
	}
	// A password with a line break is refused before PostgreSQL sees it.
	if out, err := runSuperuserScript(t, s, s.DataDir(), script, "admin", "two\nlines"); err == nil {
		t.Errorf("a password with a line break was accepted:\n%s", out)
	}
	s.StartServer(t)
	if err := s.Login(t.Context(), "admin", regenerated, "postgres"); err != nil {
		t.Errorf("after the refused runs the password changed: %v", err)
	}

	// On an empty data directory (the first start) the script does nothing: the image's
	// entrypoint runs initdb with the Secret's password.
	empty := filepath.Join(s.TempDir(t), "data")
	if out, err := runSuperuserScript(t, s, empty, script, "admin", "whatever-1"); err != nil {
		t.Errorf("on an empty data directory: %v\n%s", err, out)
	}
}
