package release

import (
	"fmt"
	"io"
	"sync"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	helmkube "helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/util/openapi"
	"k8s.io/kubectl/pkg/validation"

	"github.com/platzwart/platzwart/reconciler/kube"
)

// helmShared is what every Helm action on the engine's cluster shares, whatever the
// workplace or namespace: clients, the cluster's capabilities and the OpenAPI
// validator. What Helm's action.Configuration.Init builds per configuration (a
// kubectl factory, a clientset, a validator per manifest built, the capabilities
// per action) is built here once per cluster, and what derives from discovery once
// per discovery generation (kube.Cluster.DiscoveryGeneration): a ResetMapper, or
// Helm invalidating discovery after it installed a chart's CRDs, makes the next
// action derive it again.
//
// Why each shared part is safe to use from several Helm actions at once:
//   - client-go clientsets and dynamic clients are safe for concurrent use;
//   - capabilities are read-only: Helm only reads them into each render's values;
//   - the validator is built as kubectl's (cmdutil.Factory.Validator): a
//     paramVerifyingSchema, stateless but for its answer cache (answerCache, a
//     map behind a sync.RWMutex), over the discovery cache's OpenAPI v3 client,
//     which fetches its paths once (sync.Once) and each group-version document
//     once behind a mutex, kubectl's OpenAPI v2 getter (sync.Once) and, for the
//     client-side schema check, kubectl's factory, which parses the v2 document
//     under sync.Once; the verifiers and schemas themselves keep no state;
//   - the Helm kube client of a namespace is only read once built: Helm's actions
//     never write its fields, and its clientset field, which Helm fills lazily
//     without a lock, is filled before the client is handed out.
//
// Helm's storage is not shared: an upgrade and a rollback set MaxHistory on it,
// so every release gets its own (a few allocations).
type helmShared struct {
	cluster *kube.Cluster
	// getter is the cluster's RESTClientGetter without a namespace: the builder and
	// the validator need no namespace (Helm's kube client sets it per namespace).
	getter genericclioptions.RESTClientGetter
	// clients are built on first use.
	clients func() (*clients, error)

	mu sync.Mutex
	// kubeClients are Helm's kube clients by namespace, built once.
	kubeClients map[string]*helmkube.Client
	// derived is what was derived from discovery, at derived.generation.
	derived *derived
}

// clients are the clientsets Helm's kube clients use.
type clients struct {
	clientset *kubernetes.Clientset
	dynamic   dynamic.Interface
}

// derived is what depends on the cluster's discovery.
type derived struct {
	generation   uint64
	capabilities *chartutil.Capabilities
	// validators by field validation directive (Helm asks for Strict).
	validators map[string]validation.Schema
}

func newHelmShared(c *kube.Cluster) *helmShared {
	return &helmShared{
		cluster: c,
		getter:  c.Getter(""),
		clients: sync.OnceValues(func() (*clients, error) {
			cs, err := kubernetes.NewForConfig(c.Config)
			if err != nil {
				return nil, fmt.Errorf("clientset: %w", err)
			}
			dyn, err := dynamic.NewForConfig(c.Config)
			if err != nil {
				return nil, fmt.Errorf("dynamic client: %w", err)
			}
			return &clients{clientset: cs, dynamic: dyn}, nil
		}),
		kubeClients: map[string]*helmkube.Client{},
	}
}

// config returns an action.Configuration for namespace on the shared parts, with
// its own release storage in Secrets (Helm's default). Without actions it has only
// the storage, for reading and recording releases, and costs no request; with
// actions it has Helm's kube client and the capabilities, so that Helm's actions
// do not discover them again (Helm invalidates the discovery cache each time it
// does).
func (h *helmShared) config(namespace string, actions bool) (*action.Configuration, error) {
	cl, err := h.clients()
	if err != nil {
		return nil, err
	}
	cfg := &action.Configuration{
		Releases:       storage.Init(driver.NewSecrets(cl.clientset.CoreV1().Secrets(namespace))),
		Log:            func(string, ...any) {},
		HookOutputFunc: func(_, _, _ string) io.Writer { return io.Discard },
	}
	if !actions {
		return cfg, nil
	}
	kc, err := h.kubeClient(namespace)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	d, err := h.currentLocked()
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	cfg.RESTClientGetter = h.cluster.Getter(namespace)
	cfg.KubeClient = kc
	cfg.Capabilities = d.capabilities
	return cfg, nil
}

// kubeClient returns Helm's kube client for namespace, built on first use.
func (h *helmShared) kubeClient(namespace string) (*helmkube.Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if kc, ok := h.kubeClients[namespace]; ok {
		return kc, nil
	}
	kc := &helmkube.Client{Factory: &helmFactory{h: h}, Log: func(string, ...any) {}, Namespace: namespace}
	// Helm's kube client fills its clientset on first use, without a lock: fill it
	// here, before several actions use the client at once. It asks for the server
	// version, once per namespace.
	if err := kc.IsReachable(); err != nil {
		return nil, fmt.Errorf("cluster unreachable: %w", err)
	}
	h.kubeClients[namespace] = kc
	return kc, nil
}

// currentLocked returns what was derived from discovery, deriving it again when the
// discovery cache was invalidated since; h.mu is held. The generation is read
// before deriving: an invalidation while deriving leaves an older generation
// recorded, so the next call derives again.
func (h *helmShared) currentLocked() (*derived, error) {
	gen := h.cluster.DiscoveryGeneration()
	if h.derived != nil && h.derived.generation == gen {
		return h.derived, nil
	}
	dc, err := h.getter.ToDiscoveryClient()
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("server version: %w", err)
	}
	apis, err := action.GetVersionSet(dc)
	if err != nil {
		return nil, fmt.Errorf("API versions: %w", err)
	}
	h.derived = &derived{
		generation: gen,
		capabilities: &chartutil.Capabilities{
			APIVersions: apis,
			KubeVersion: chartutil.KubeVersion{Version: v.GitVersion, Major: v.Major, Minor: v.Minor},
			HelmVersion: chartutil.DefaultCapabilities.HelmVersion,
		},
		validators: map[string]validation.Schema{},
	}
	return h.derived, nil
}

// validator returns the validator for a field validation directive, built once per
// discovery generation the way kubectl's factory builds it for every manifest
// (cmdutil.Factory.Validator), over the shared discovery cache, except that its
// per-kind answers (does the server validate fields itself?) are kept only when
// they are answers (answerCache). Building it sends no request.
func (h *helmShared) validator(directive string) (validation.Schema, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, err := h.currentLocked()
	if err != nil {
		return nil, err
	}
	if v, ok := d.validators[directive]; ok {
		return v, nil
	}
	cl, err := h.clients()
	if err != nil {
		return nil, err
	}
	dc, err := h.getter.ToDiscoveryClient()
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	// A new kubectl factory per generation: it keeps the OpenAPI v2 document, which
	// the client-side schema check reads, for good.
	clientSide := validation.ConjunctiveSchema{validation.NewSchemaValidation(cmdutil.NewFactory(h.getter)), validation.NoDoubleKeySchema{}}
	param := resource.QueryParamFieldValidation
	verifier := resource.NewFallbackQueryParamVerifier(
		resource.NewQueryParamVerifierV3(cl.dynamic, dc.OpenAPIV3(), param),
		resource.NewQueryParamVerifier(cl.dynamic, openapi.NewOpenAPIGetter(dc), param))
	v := validation.NewParamVerifyingSchema(clientSide, &answerCache{next: verifier, discovery: dc, answers: map[schema.GroupVersionKind]error{}}, directive)
	d.validators[directive] = v
	return v, nil
}

// answerCache keeps, per kind, whether the server validates fields itself, as
// kubectl's cachingVerifier does, but only answers: a failure to find out (the
// API server restarting, say) is returned and not kept. The OpenAPI clients under
// it keep their failures too (client-go's cached OpenAPI v3 client, kubectl's v2
// getter), so a failure invalidates the discovery cache: the next manifest is
// checked by a new validator over new clients, as the next action of a Helm
// kube client of its own would be.
type answerCache struct {
	next      resource.Verifier
	discovery discovery.CachedDiscoveryInterface

	mu      sync.RWMutex
	answers map[schema.GroupVersionKind]error
}

func (a *answerCache) HasSupport(gvk schema.GroupVersionKind) error {
	a.mu.RLock()
	err, ok := a.answers[gvk]
	a.mu.RUnlock()
	if ok {
		return err
	}
	err = a.next.HasSupport(gvk)
	if err != nil && !resource.IsParamUnsupportedError(err) {
		a.discovery.Invalidate()
		return err
	}
	a.mu.Lock()
	a.answers[gvk] = err
	a.mu.Unlock()
	return err
}

// helmFactory is the factory of Helm's kube clients (helm.sh/helm/v3/pkg/kube.Factory)
// on the shared parts. Helm asks it for a validator on every manifest it builds
// with validation (each install and upgrade); kubectl's factory builds a new one
// each time, which parses the OpenAPI v3 document of every group-version of the
// manifest again.
type helmFactory struct{ h *helmShared }

var _ helmkube.Factory = (*helmFactory)(nil)

func (f *helmFactory) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return f.h.getter.ToRawKubeConfigLoader()
}

func (f *helmFactory) DynamicClient() (dynamic.Interface, error) {
	cl, err := f.h.clients()
	if err != nil {
		return nil, err
	}
	return cl.dynamic, nil
}

func (f *helmFactory) KubernetesClientSet() (*kubernetes.Clientset, error) {
	cl, err := f.h.clients()
	if err != nil {
		return nil, err
	}
	return cl.clientset, nil
}

func (f *helmFactory) NewBuilder() *resource.Builder { return resource.NewBuilder(f.h.getter) }

func (f *helmFactory) Validator(directive string) (validation.Schema, error) {
	if directive == metav1.FieldValidationIgnore {
		return validation.NullSchema{}, nil
	}
	return f.h.validator(directive)
}
