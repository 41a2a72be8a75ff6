package reconciler_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/platzwart/platzwart/reconciler/release"
)

// TestCtrlCDuringUpgradeRollsNothingBack runs `platzwart apply` as a process and
// sends SIGINT (Ctrl-C) while it waits for an upgrade: the process ends promptly,
// the upgraded revision is neither rolled back nor confirmed, and the next reconcile
// confirms it once it is ready.
func TestCtrlCDuringUpgradeRollsNothingBack(t *testing.T) {
	e := newEnv(t)
	bin := buildCLI(t)
	e.reconcile(e.plan(e.workplaceDir(nil, nil)))

	label := "platzwart.io/ctrl-c-" + e.ns
	patch := `  patches:
    valkey:
      - target: {kind: Deployment, name: demo-valkey}
        patch: |
          - op: add
            path: /spec/template/spec/nodeSelector
            value: {"` + label + `": "yes"}
`
	dir := e.workplaceDir(map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n" + patch}, nil)
	cmd, scan := applyUntilWaiting(t, bin, dir, "demo-valkey")
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for scan.Scan() {
		rest.WriteString(scan.Text() + "\n")
	}
	t.Log("apply after Ctrl-C:\n" + rest.String())
	err := cmd.Wait()
	took := time.Since(start)
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Errorf("apply after Ctrl-C: %v, want a non-zero exit", err)
	}
	if took > 20*time.Second {
		t.Errorf("apply took %s to stop after Ctrl-C", took)
	}
	if strings.Contains(rest.String(), "rollback") {
		t.Errorf("Ctrl-C rolled the upgrade back:\n%s", rest.String())
	}
	hist, err := e.rec.Engine.History(t.Context(), e.ns)
	if err != nil {
		t.Fatal(err)
	}
	var valkey []release.Revision
	for _, r := range hist {
		if r.Name == "demo-valkey" {
			valkey = append(valkey, r)
		}
	}
	last := valkey[len(valkey)-1]
	if last.Version != 2 || last.Status != "deployed" || last.Ready {
		t.Fatalf("after Ctrl-C demo-valkey is %+v; want revision 2 deployed, unconfirmed", last)
	}

	// Once a node fits, the next reconcile confirms revision 2 instead of rolling back.
	labelNode(t, e, label)
	rep, err := e.rec.Reconcile(t.Context(), e.plan(dir))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() {
		t.Fatalf("reconcile after Ctrl-C: %+v", rep.Result.Failed())
	}
	hist, _ = e.rec.Engine.History(t.Context(), e.ns)
	for _, r := range hist {
		if r.Name == "demo-valkey" && (r.Version > 2 || strings.HasPrefix(r.Description, "Rollback")) {
			t.Errorf("demo-valkey revision %d: %s; want revision 2 confirmed, no rollback", r.Version, r.Description)
		}
	}
}

// labelNode puts key=yes on one node until the test ends.
func labelNode(t *testing.T, e *env, key string) {
	t.Helper()
	nodes, err := e.cluster.Clientset.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("nodes: %v", err)
	}
	name := nodes.Items[0].Name
	set := []byte(`{"metadata":{"labels":{"` + key + `":"yes"}}}`)
	if _, err := e.cluster.Clientset.CoreV1().Nodes().Patch(t.Context(), name, types.MergePatchType, set, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unset := []byte(`{"metadata":{"labels":{"` + key + `":null}}}`)
		_, _ = e.cluster.Clientset.CoreV1().Nodes().Patch(context.Background(), name, types.MergePatchType, unset, metav1.PatchOptions{})
	})
}
