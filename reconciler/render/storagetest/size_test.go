package storagetest

import (
	"context"
	"encoding/base64"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
)

func TestMain(m *testing.M) { os.Exit(cluster.RunTests(m)) }

// noise is n bytes of incompressible text.
func noise(n int) string {
	r := rand.New(rand.NewChaCha8([32]byte{7}))
	raw := make([]byte, n*3/4+3)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	return base64.StdEncoding.EncodeToString(raw)[:n]
}

func release(ns string, blob int) *plan.Release {
	ch := &chart.Chart{
		Metadata:  &chart.Metadata{APIVersion: "v2", Name: "sized", Version: "1.0.0"},
		Templates: []*chart.File{{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\ndata: {size: {{ len .Values.blob | quote }}}\n")}},
	}
	return &plan.Release{Name: "sized", Workplace: "demo", Namespace: ns, Component: "sized",
		Chart: &catalog.Chart{Chart: ch, File: "charts/sized"}, Values: map[string]any{"blob": noise(blob)}}
}

// TestEncodedSizeIsWhatHelmStores installs a release with the Helm SDK and compares
// the size of its storage Secret's data with render's computation; then shows that a
// release render refuses is one the API server refuses to store.
func TestEncodedSizeIsWhatHelmStores(t *testing.T) {
	ctx := context.Background()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	cfg := new(action.Configuration)
	if err := cfg.Init(c.RESTClientGetter(ns), ns, "secret", t.Logf); err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(c.Config())

	rel := release(ns, 600<<10)
	m, err := render.Release(ctx, rel)
	if err != nil {
		t.Fatal(err)
	}
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace = rel.Name, ns
	if _, err := in.RunWithContext(ctx, rel.Chart.Chart, rel.Values); err != nil {
		t.Fatal(err)
	}
	s, err := client.CoreV1().Secrets(ns).Get(ctx, "sh.helm.release.v1.sized.v1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stored := len(s.Data["release"])
	t.Logf("render computed %d bytes, Helm stored %d bytes (difference %d)", m.StoredSize, stored, stored-m.StoredSize)
	if d := stored - m.StoredSize; d < -1024 || d > 1024 {
		t.Errorf("Helm stored %d bytes, render computed %d: more than 1 KiB apart", stored, m.StoredSize)
	}
	if margin := render.SecretDataLimit - render.ReleaseSizeLimit; stored-m.StoredSize >= margin {
		t.Errorf("the margin of %d bytes does not cover the difference %d", margin, stored-m.StoredSize)
	}

	// Over the limit: render refuses, and Helm's storage would be refused by the API server.
	big := release(ns, 1100<<10)
	big.Name = "sized-big"
	if _, err := render.Release(ctx, big); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("render accepted a release over the limit: %v", err)
	}
	in = action.NewInstall(cfg)
	in.ReleaseName, in.Namespace = big.Name, ns
	_, err = in.RunWithContext(ctx, big.Chart.Chart, big.Values)
	if err == nil || !strings.Contains(err.Error(), "Too long") {
		t.Errorf("Helm installed a release over the Secret limit, or failed otherwise: %v", err)
	}
}
