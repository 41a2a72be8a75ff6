package kube

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The keys a Secret holding a kubeconfig is read from when its reference names none,
// in this order (Flux's helm-controller reads spec.kubeConfig.secretRef the same way).
const (
	KubeconfigSecretKey    = "value"
	KubeconfigSecretKeyExt = "value.yaml"
)

// KubeconfigFromSecret returns the kubeconfig held in a Secret under key, or when key
// is "" under KubeconfigSecretKey, else KubeconfigSecretKeyExt. Errors name the
// Secret and the key, never a value.
func KubeconfigFromSecret(s *corev1.Secret, key string) ([]byte, error) {
	name := s.Namespace + "/" + s.Name
	if key != "" {
		data := s.Data[key]
		if len(data) == 0 {
			return nil, fmt.Errorf("secret %s: no key %q with a kubeconfig", name, key)
		}
		return data, nil
	}
	for _, k := range []string{KubeconfigSecretKey, KubeconfigSecretKeyExt} {
		if data := s.Data[k]; len(data) > 0 {
			return data, nil
		}
	}
	return nil, fmt.Errorf("secret %s: no key %q or %q with a kubeconfig (or name one in secretRef.key)", name, KubeconfigSecretKey, KubeconfigSecretKeyExt)
}

// FromKubeconfig builds the clients of the cluster a kubeconfig held in a Secret
// points at (a Workplace's spec.kubeConfig) the way Connect does: the same rate
// limits, one discovery cache and REST mapper, every client. Every request is
// bounded by Options.Timeout (default DefaultRemoteTimeout), so an unreachable
// cluster fails within it. Options.Kubeconfig is ignored; Options.Context picks a
// context other than the kubeconfig's current one.
//
// The kubeconfig must be self-contained, because the controller runs it: it is
// refused, naming entry and field, when any of its clusters or users would run a
// program (exec credential plugins, auth-provider), read a file of the controller's
// (certificate-authority, client-certificate, client-key, tokenFile) or turn off
// the verification of the server's certificate (insecure-skip-tls-verify). Flux's
// helm-controller drops exec and insecure TLS unless the controller runs with
// --insecure-kubeconfig-exec / --insecure-kubeconfig-tls and keeps only inline
// fields (fluxcd/pkg runtime/client/kubeconfig.go, KubeConfig); platzwart has no
// such switches and says what it refuses instead of dropping it.
func FromKubeconfig(data []byte, opts Options) (*Cluster, error) {
	raw, err := parseKubeconfig(data, opts.Context)
	if err != nil {
		return nil, err
	}
	loader := func(namespace string) clientcmd.ClientConfig {
		overrides := &clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: namespace}}
		return clientcmd.NewNonInteractiveClientConfig(*raw, raw.CurrentContext, overrides, nil)
	}
	cfg, err := loader("").ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return newCluster(cfg, opts, DefaultRemoteTimeout, loader)
}

// parseKubeconfig decodes a kubeconfig, checks that it is self-contained and
// selects context (the current one when "").
func parseKubeconfig(data []byte, context string) (*clientcmdapi.Config, error) {
	if len(data) == 0 {
		return nil, errors.New("kubeconfig: empty")
	}
	raw, err := clientcmd.Load(data)
	if err != nil {
		// The decoder's messages say where the syntax broke, not what the file holds.
		return nil, fmt.Errorf("kubeconfig: not a kubeconfig: %w", err)
	}
	if err := selfContained(raw); err != nil {
		return nil, err
	}
	if context != "" {
		raw.CurrentContext = context
	}
	if raw.CurrentContext == "" {
		return nil, errors.New("kubeconfig: no current-context")
	}
	if _, ok := raw.Contexts[raw.CurrentContext]; !ok {
		return nil, fmt.Errorf("kubeconfig: context %q not found", raw.CurrentContext)
	}
	return raw, nil
}

// selfContained refuses what a kubeconfig from a Secret must not do in a
// controller, in every cluster and user entry (not only the current context's: a
// kubeconfig meant for a controller has no use for them).
func selfContained(c *clientcmdapi.Config) error {
	var errs []error
	refuse := func(entry, name, field, why string) {
		errs = append(errs, fmt.Errorf("kubeconfig: %s[%q].%s: %s", entry, name, field, why))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Clusters)) {
		cl := c.Clusters[name]
		if cl.CertificateAuthority != "" {
			refuse("clusters", name, "certificate-authority", "reads a file on the controller; use certificate-authority-data")
		}
		if cl.InsecureSkipTLSVerify {
			refuse("clusters", name, "insecure-skip-tls-verify", "turns off the verification of the server's certificate; use certificate-authority-data")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.AuthInfos)) {
		u := c.AuthInfos[name]
		if u.Exec != nil {
			refuse("users", name, "exec", "runs a credential plugin on the controller; use an inline token or client certificate")
		}
		if u.AuthProvider != nil {
			refuse("users", name, "auth-provider", "runs a credential plugin on the controller; use an inline token or client certificate")
		}
		if u.ClientCertificate != "" {
			refuse("users", name, "client-certificate", "reads a file on the controller; use client-certificate-data")
		}
		if u.ClientKey != "" {
			refuse("users", name, "client-key", "reads a file on the controller; use client-key-data")
		}
		if u.TokenFile != "" {
			refuse("users", name, "tokenFile", "reads a file on the controller; use token")
		}
	}
	return errors.Join(errs...)
}
