package release

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	helmkube "helm.sh/helm/v3/pkg/kube"
	"k8s.io/client-go/rest"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/kube"
)

// validatedManifest has the kinds of a typical release, across the core, apps,
// batch and networking group-versions.
const validatedManifest = `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: b}
---
apiVersion: v1
kind: Service
metadata: {name: svc}
spec: {ports: [{port: 80}], selector: {app: x}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: postgres}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: init}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: init, image: busybox}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec: {podSelector: {}}
`

// helmBuilds returns the two ways of building a manifest with validation: Helm's
// own kube client (a new validator per manifest, as every action builds it) and
// the engine's shared one.
func helmBuilds(tb testing.TB) map[string]helmkube.Interface {
	tb.Helper()
	c := cluster.FromTest(tb)
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath()})
	if err != nil {
		tb.Fatal(err)
	}
	e := New(kc, Options{})
	cfg, err := e.actionConfig("default")
	if err != nil {
		tb.Fatal(err)
	}
	return map[string]helmkube.Interface{
		"helm":   helmkube.New(kc.Getter("default")),
		"shared": cfg.KubeClient,
	}
}

// TestSharedValidatorAnswersAsHelms: the engine's kube client, with its shared
// validator, builds what Helm's own builds and refuses what it refuses, from
// several goroutines at once. (A server that supports field validation, as every
// supported Kubernetes does, makes kubectl's validator skip the client-side schema
// check: it parses the OpenAPI v3 document of each group-version only to find
// that out.)
func TestSharedValidatorAnswersAsHelms(t *testing.T) {
	builds := helmBuilds(t)
	manifests := map[string]string{
		"valid":         validatedManifest,
		"unknown field": strings.Replace(validatedManifest, "serviceName: db", "serviceName: db\n  notAField: 1", 1),
		"duplicate key": strings.Replace(validatedManifest, "serviceName: db", "serviceName: db\n  serviceName: db2", 1),
		"unknown kind":  validatedManifest + "---\napiVersion: example.org/v1\nkind: Nothing\nmetadata: {name: x}\n",
	}
	type answer struct {
		n   int
		err string
	}
	want := map[string]answer{}
	for name, m := range manifests {
		res, err := builds["helm"].Build(bytes.NewBufferString(m), true)
		a := answer{n: len(res)}
		if err != nil {
			a.err = err.Error()
		}
		want[name] = a
		t.Logf("helm's kube client, %s manifest: %d resources, error %q", name, a.n, a.err)
	}
	var wg sync.WaitGroup
	for range 4 {
		for name, m := range manifests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := builds["shared"].Build(bytes.NewBufferString(m), true)
				got := answer{n: len(res)}
				if err != nil {
					got.err = err.Error()
				}
				if got != want[name] {
					t.Errorf("%s manifest: shared %+v; helm's %+v", name, got, want[name])
				}
			}()
		}
	}
	wg.Wait()
}

// BenchmarkBuildValidated measures what Helm spends building (and validating) one
// release manifest before it applies it, per install or upgrade: with Helm's own
// kube client, which builds a new validator for every manifest and so parses the
// OpenAPI v3 document of each of its group-versions again, and with the engine's,
// which shares one validator per cluster.
func BenchmarkBuildValidated(b *testing.B) {
	for name, kc := range helmBuilds(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := kc.Build(bytes.NewBufferString(validatedManifest), true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// roundTripFunc is an http.RoundTripper from a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSharedValidatorKeepsNoFailure: while the OpenAPI documents cannot be fetched
// (an API server restarting), building a manifest fails, as with Helm's own
// client; once they can, the next build succeeds: the shared validator and the
// OpenAPI clients under it keep answers, never a failure to get one.
func TestSharedValidatorKeepsNoFailure(t *testing.T) {
	c := cluster.FromTest(t)
	var failing atomic.Bool
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath(), WrapConfig: func(cfg *rest.Config) *rest.Config {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if failing.Load() && strings.HasPrefix(r.URL.Path, "/openapi/") {
					return nil, errors.New("test: OpenAPI unavailable")
				}
				return rt.RoundTrip(r)
			})
		})
		return cfg
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := New(kc, Options{}).actionConfig("default")
	if err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	for range 2 {
		if _, err := cfg.KubeClient.Build(bytes.NewBufferString(validatedManifest), true); err == nil || !strings.Contains(err.Error(), "OpenAPI unavailable") {
			t.Fatalf("build while OpenAPI fails: %v; want the failure", err)
		}
	}
	failing.Store(false)
	if res, err := cfg.KubeClient.Build(bytes.NewBufferString(validatedManifest), true); err != nil || len(res) != 6 {
		t.Fatalf("build once OpenAPI is back: %d resources, %v; want 6", len(res), err)
	}
}
