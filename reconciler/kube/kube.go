// Package kube connects to a cluster from kubectl-style settings, or from a
// self-contained kubeconfig held in a Secret, and hands out the clients platzwart
// uses: Helm's RESTClientGetter per namespace, a controller-runtime
// client, a typed clientset, and one shared discovery cache and REST mapper.
package kube

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Client-side rate limits and the request timeout of a cluster reached through a
// kubeconfig from a Secret, when Options leave them zero.
const (
	DefaultQPS           = 50
	DefaultBurst         = 100
	DefaultRemoteTimeout = 30 * time.Second
)

// Options say how to reach the cluster, like kubectl's flags.
type Options struct {
	// Kubeconfig is the kubeconfig file ("" = $KUBECONFIG, ~/.kube/config or in-cluster).
	// FromKubeconfig ignores it.
	Kubeconfig string
	// Context is the kubeconfig context ("" = the current one).
	Context string
	// QPS and Burst are the client-side rate limit of every client of the cluster
	// (0 = DefaultQPS and DefaultBurst).
	QPS   float32
	Burst int
	// Timeout bounds every request (rest.Config.Timeout, which is http.Client's: it
	// covers reading the response too). 0 means none for Connect and
	// DefaultRemoteTimeout for FromKubeconfig; a negative value means none.
	// Informers and watches use WatchConfig, which has none.
	Timeout time.Duration
	// WrapConfig may adjust the rest.Config before any client is built; tests use it to
	// count requests.
	WrapConfig func(*rest.Config) *rest.Config
}

// Cluster holds the clients of one cluster.
type Cluster struct {
	// Config is the REST configuration every client is built from.
	Config *rest.Config
	// Client is a controller-runtime client (no cache: reads go to the API server).
	Client client.Client
	// Clientset is the typed client-go clientset.
	Clientset kubernetes.Interface
	// Mapper maps kinds to resources, backed by a shared discovery cache.
	Mapper meta.RESTMapper

	// loader reads the kubeconfig again with a namespace override (Helm asks it for
	// the namespace of a release).
	loader    func(namespace string) clientcmd.ClientConfig
	discovery *generationalDiscovery
	mapper    *restmapper.DeferredDiscoveryRESTMapper
}

// ResetMapper forgets what discovery knew, after CRDs were added.
func (c *Cluster) ResetMapper() { c.mapper.Reset() }

// DiscoveryGeneration changes whenever the shared discovery cache is invalidated:
// by ResetMapper, by the REST mapper itself when a kind is missing from a stale
// cache, or by Helm after it installed a chart's CRDs. Whatever is derived from
// discovery (the API versions of Helm's capabilities, the OpenAPI schema) is
// current as long as the generation it was derived at is.
func (c *Cluster) DiscoveryGeneration() uint64 { return c.discovery.generation.Load() }

// WatchConfig returns a copy of Config without the request timeout, for informers
// and watches: http.Client's timeout covers reading the whole response, so it
// would end every watch after Options.Timeout.
func (c *Cluster) WatchConfig() *rest.Config {
	cfg := rest.CopyConfig(c.Config)
	cfg.Timeout = 0
	return cfg
}

// Connect builds the clients of the cluster the options point at.
func Connect(opts Options) (*Cluster, error) {
	cfg, err := clientConfig(opts, "").ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	loader := func(namespace string) clientcmd.ClientConfig { return clientConfig(opts, namespace) }
	return newCluster(cfg, opts, 0, loader)
}

// newCluster builds the clients from a rest.Config: the rate limit and timeout of
// opts (defaultTimeout when it leaves the timeout 0), then WrapConfig, one discovery
// cache and REST mapper shared by every client.
func newCluster(cfg *rest.Config, opts Options, defaultTimeout time.Duration, loader func(string) clientcmd.ClientConfig) (*Cluster, error) {
	cfg.QPS, cfg.Burst = DefaultQPS, DefaultBurst
	if opts.QPS > 0 {
		cfg.QPS = opts.QPS
	}
	if opts.Burst > 0 {
		cfg.Burst = opts.Burst
	}
	switch {
	case opts.Timeout > 0:
		cfg.Timeout = opts.Timeout
	case opts.Timeout == 0:
		cfg.Timeout = defaultTimeout
	default:
		cfg.Timeout = 0
	}
	if opts.WrapConfig != nil {
		cfg = opts.WrapConfig(cfg)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	mem, ok := memory.NewMemCacheClient(dc).(discoveryCache)
	if !ok {
		return nil, errors.New("discovery cache: client-go's memory cache has no context methods")
	}
	cached := &generationalDiscovery{discoveryCache: mem}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	cl, err := client.New(cfg, client.Options{Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Cluster{Config: cfg, Client: cl, Clientset: cs, Mapper: mapper, loader: loader, discovery: cached, mapper: mapper}, nil
}

// discoveryCache is what client-go's in-memory discovery cache implements.
type discoveryCache interface {
	discovery.CachedDiscoveryInterface
	discovery.CachedDiscoveryInterfaceWithContext
}

// generationalDiscovery is the shared discovery cache, counting its invalidations.
// The count goes up after the cache was invalidated, so whoever reads the new
// count reads fresh discovery.
type generationalDiscovery struct {
	discoveryCache
	generation atomic.Uint64
}

func (d *generationalDiscovery) Invalidate() {
	d.discoveryCache.Invalidate()
	d.generation.Add(1)
}

func (d *generationalDiscovery) InvalidateWithContext(ctx context.Context) {
	d.discoveryCache.InvalidateWithContext(ctx)
	d.generation.Add(1)
}

// Getter returns a RESTClientGetter whose default namespace is namespace, sharing
// this cluster's configuration and discovery cache (for the Helm SDK).
func (c *Cluster) Getter(namespace string) genericclioptions.RESTClientGetter {
	return &getter{c: c, namespace: namespace}
}

type getter struct {
	c         *Cluster
	namespace string
}

func (g *getter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.c.Config), nil }

func (g *getter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.c.discovery, nil
}

func (g *getter) ToRESTMapper() (meta.RESTMapper, error) { return g.c.Mapper, nil }

func (g *getter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return g.c.loader(g.namespace)
}

// clientConfig loads the kubeconfig like kubectl, with context and namespace overrides.
func clientConfig(opts Options, namespace string) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if opts.Kubeconfig != "" {
		rules.ExplicitPath = opts.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: opts.Context, Context: clientcmdapi.Context{Namespace: namespace}}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}

// Namespace returns the namespace of the kubeconfig context, like kubectl does without
// -n, and whether the kubeconfig set it explicitly.
func Namespace(opts Options) (string, bool, error) {
	return clientConfig(opts, "").Namespace()
}
