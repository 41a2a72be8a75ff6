package controller_test

import (
	"bytes"
	"crypto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/controller"
	"github.com/platzwart/platzwart/reconciler/source"
)

// TestPollingConverges: without webhooks, polling alone brings a pushed change to Ready.
func TestPollingConverges(t *testing.T) {
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	repo := newGitRepo(t, workplaceDoc(t, ns, nil))
	runController(t, c, controller.Options{
		Name:     "poll",
		Source:   source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval: time.Second,
	})
	cl := workplaceClient(t, c)
	waitWorkplace(t, cl, ns, "demo", "Ready at the first commit", 90*time.Second, readyAt(repo.git("rev-parse", "HEAD")))
	next := repo.push(workplaceDoc(t, ns, map[string]string{"office: collabora ": "office: none "}), "no office")
	waitWorkplace(t, cl, ns, "demo", "Ready after polling", 2*time.Minute, readyAt(next))
	if got := revisionsOf(t, c, ns); got["collabora"] != 0 {
		t.Errorf("collabora still installed after office: none: %v", got)
	}
}

// TestUnsignedCommitRefused: with OpenPGP verification on, a signed commit is applied
// and a later unsigned one never is; SourceReady says why.
func TestUnsignedCommitRefused(t *testing.T) {
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	repo := newGitRepo(t, "# not a workplace yet\n")
	entity, keyring := openPGPKey(t)
	signed := signedCommit(t, repo, workplaceDoc(t, ns, nil), entity)

	runController(t, c, controller.Options{
		Name: "verify",
		Source: source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir(),
			Verify: &source.Verification{Mode: source.VerifyOpenPGP, Keys: [][]byte{keyring}}},
		Interval: time.Second,
	})
	cl := workplaceClient(t, c)
	waitWorkplace(t, cl, ns, "demo", "Ready at the signed commit", 90*time.Second, readyAt(signed))
	before := revisionsOf(t, c, ns)

	repo.git("pull", "--ff-only", "origin", "main")
	unsigned := repo.push(workplaceDoc(t, ns, map[string]string{"office: collabora ": "office: none "}), "unsigned change")
	w := waitWorkplace(t, cl, ns, "demo", "SourceReady=False", time.Minute, func(w *v1alpha1.Workplace) bool {
		c := meta.FindStatusCondition(w.Status.Conditions, controller.ConditionSourceReady)
		return c != nil && c.Status == "False"
	})
	cond := meta.FindStatusCondition(w.Status.Conditions, controller.ConditionSourceReady)
	if cond.Reason != "VerificationFailed" || !strings.Contains(cond.Message, unsigned[:7]) {
		t.Errorf("SourceReady: %s: %s; want VerificationFailed naming commit %s", cond.Reason, cond.Message, unsigned[:7])
	}
	time.Sleep(3 * time.Second) // several polls
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "demo"}, w); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(w.Status.LastAppliedRevision, signed) || w.Spec.Components["office"] != "collabora" {
		t.Errorf("the unsigned commit was applied: revision %s, office %q", w.Status.LastAppliedRevision, w.Spec.Components["office"])
	}
	if after := revisionsOf(t, c, ns); after["collabora"] != before["collabora"] {
		t.Errorf("releases changed after an unsigned commit: %v → %v", before, after)
	}
}

// openPGPKey makes a signing key and its armored public key ring.
func openPGPKey(t *testing.T) (*openpgp.Entity, []byte) {
	t.Helper()
	e, err := openpgp.NewEntity("platzwart test", "", "ops@example.org", &packet.Config{DefaultHash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return e, buf.Bytes()
}

// signedCommit commits workplace.yaml signed with the key through go-git and pushes it.
func signedCommit(t *testing.T, repo *gitRepo, content string, key *openpgp.Entity) string {
	t.Helper()
	dir := t.TempDir()
	r, err := gogit.PlainClone(dir, false, &gogit.CloneOptions{URL: repo.url, ReferenceName: plumbing.NewBranchReferenceName("main"), SingleBranch: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("workplace.yaml"); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "ops", Email: "ops@example.org", When: time.Now()}
	h, err := wt.Commit("signed workplace", &gogit.CommitOptions{Author: sig, Committer: sig, SignKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Push(&gogit.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// TestLeaderElection runs two replicas of one install: only the leader acts.
func TestLeaderElection(t *testing.T) {
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	// The leader election Lease lives in the controller's namespace, which Workplaces
	// may not use.
	ctl := c.NewNamespace(t)
	repo := newGitRepo(t, workplaceDoc(t, ns, nil))
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	for _, reg := range regs {
		runController(t, c, controller.Options{
			Name:           "ha",
			Namespace:      ctl,
			Source:         source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
			Interval:       time.Second,
			LeaderElection: true,
			Registry:       reg,
		})
	}
	cl := workplaceClient(t, c)
	waitWorkplace(t, cl, ns, "demo", "Ready", 90*time.Second, readyAt(repo.git("rev-parse", "HEAD")))
	acted := 0
	for i, reg := range regs {
		installs := metricValue(t, reg, "platzwart_helm_actions_total", map[string]string{"namespace": ns, "workplace": "demo", "action": "install"})
		t.Logf("replica %d: %v installs", i, installs)
		if installs > 0 {
			acted++
		}
	}
	if acted != 1 {
		t.Errorf("%d replicas installed releases, want exactly the leader", acted)
	}
}

// TestWorkplaceSelector: two installs share one repository and split its Workplaces by
// label; each reconciles only its own.
func TestWorkplaceSelector(t *testing.T) {
	c := cluster.FromTest(t)
	nsA, nsB := c.NewNamespace(t), c.NewNamespace(t)
	docA := strings.Replace(workplaceDoc(t, nsA, nil), "  namespace: "+nsA+"\n", "  namespace: "+nsA+"\n  labels: {shard: a}\n", 1)
	// Two workplaces never share a host: the preflight refuses the second claim.
	docB := strings.Replace(workplaceDoc(t, nsB, map[string]string{"domain: 192.168.49.2.sslip.io": "domain: 192.168.49.3.sslip.io"}),
		"  namespace: "+nsB+"\n", "  namespace: "+nsB+"\n  labels: {shard: b}\n", 1)
	repo := newGitRepo(t, docA+"---\n"+docB)
	head := repo.git("rev-parse", "HEAD")
	for _, shard := range []string{"a", "b"} {
		sel, err := labels.Parse("shard=" + shard)
		if err != nil {
			t.Fatal(err)
		}
		runController(t, c, controller.Options{
			Name:     "shard-" + shard,
			Source:   source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
			Interval: time.Hour,
			Selector: sel,
		})
	}
	cl := workplaceClient(t, c)
	a := waitWorkplace(t, cl, nsA, "demo", "Ready (shard a)", 90*time.Second, readyAt(head))
	b := waitWorkplace(t, cl, nsB, "demo", "Ready (shard b)", 90*time.Second, readyAt(head))
	if a.Labels[controller.LabelSource] != "shard-a" || b.Labels[controller.LabelSource] != "shard-b" {
		t.Errorf("sources: %s for shard a, %s for shard b", a.Labels[controller.LabelSource], b.Labels[controller.LabelSource])
	}
}
