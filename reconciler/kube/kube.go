// Package kube connects to a cluster from kubectl-style settings and hands out the
// clients platzwart uses: Helm's RESTClientGetter per namespace, a controller-runtime
// client, a typed clientset, and one shared discovery cache and REST mapper.
package kube

import (
	"fmt"

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

// Options say how to reach the cluster, like kubectl's flags.
type Options struct {
	// Kubeconfig is the kubeconfig file ("" = $KUBECONFIG, ~/.kube/config or in-cluster).
	Kubeconfig string
	// Context is the kubeconfig context ("" = the current one).
	Context string
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

	opts      Options
	discovery discovery.CachedDiscoveryInterface
	mapper    *restmapper.DeferredDiscoveryRESTMapper
}

// ResetMapper forgets what discovery knew, after CRDs were added.
func (c *Cluster) ResetMapper() { c.mapper.Reset() }

// Connect builds the clients of the cluster the options point at.
func Connect(opts Options) (*Cluster, error) {
	cfg, err := clientConfig(opts, "").ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	if opts.WrapConfig != nil {
		cfg = opts.WrapConfig(cfg)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	cl, err := client.New(cfg, client.Options{Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Cluster{Config: cfg, Client: cl, Clientset: cs, Mapper: mapper, opts: opts, discovery: cached, mapper: mapper}, nil
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
	return clientConfig(g.c.opts, g.namespace)
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
