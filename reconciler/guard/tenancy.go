// Package guard holds the checks that keep a workplace inside its bounds without a
// cluster: tenancy (every rendered object in the workplace's namespace, cluster-scoped
// kinds only when declared and allowed, denied namespaces) and credential literals in
// values. It knows nothing of plans or Helm: callers hand it objects and values.
package guard

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/postrender"
)

// Options are the tenancy settings of an install (CLI flags, controller flags).
type Options struct {
	// DenyNamespaces are namespaces no Workplace may use, as path.Match patterns
	// ("kube-*"). Nil means DefaultDenyNamespaces; the controller adds its own namespace.
	DenyNamespaces []string
	// AllowClusterScoped lets components render the cluster-scoped kinds they declare
	// in component.yaml (clusterScoped). Off by default: nothing cluster-wide.
	AllowClusterScoped bool
	// Scope, when set, says whether a kind is cluster-scoped and whether it knows the
	// kind (RESTMapperScope: the cluster's REST mapper). Kinds it does not know, and
	// every kind when it is nil (offline), are decided by the built-in list.
	Scope func(group, kind string) (clusterScoped, known bool)
}

// RESTMapperScope decides scope with a REST mapper, such as the cluster's discovery
// mapper: with it the guard also knows the scope of custom resources.
func RESTMapperScope(m meta.RESTMapper) func(group, kind string) (bool, bool) {
	return func(group, kind string) (bool, bool) {
		mapping, err := m.RESTMapping(schema.GroupKind{Group: group, Kind: kind})
		if err != nil {
			return false, false
		}
		return mapping.Scope.Name() == meta.RESTScopeNameRoot, true
	}
}

// clusterScopedKind decides the scope of a kind with opts.Scope, else the built-in list.
func (o Options) clusterScopedKind(group, kind string) bool {
	if o.Scope != nil {
		if cs, known := o.Scope(group, kind); known {
			return cs
		}
	}
	return IsClusterScoped(group, kind)
}

// DefaultDenyNamespaces are the namespaces refused for Workplaces unless the install
// says otherwise: the cluster's own.
func DefaultDenyNamespaces() []string { return []string{"kube-*", "default"} }

// Deny returns the deny list in effect.
func (o Options) Deny() []string {
	if o.DenyNamespaces == nil {
		return DefaultDenyNamespaces()
	}
	return o.DenyNamespaces
}

// DeniedNamespace returns the pattern of the deny list that ns matches, or "".
func (o Options) DeniedNamespace(ns string) string {
	for _, pat := range o.Deny() {
		if ok, err := path.Match(pat, ns); (err == nil && ok) || pat == ns {
			return pat
		}
	}
	return ""
}

// Release names the release whose objects are checked, for messages and scope.
type Release struct {
	// File declares the workplace; Workplace is its name.
	File      string
	Workplace string
	// Namespace is the workplace's namespace.
	Namespace string
	// Component renders the objects.
	Component string
	// ClusterScoped are the cluster-scoped kinds the component declares.
	ClusterScoped []catalog.GroupKind
}

func (r *Release) errorf(o *postrender.Object, format string, args ...any) error {
	return fmt.Errorf("%s: Workplace %q: component %q: %s: %s", r.File, r.Workplace, r.Component, o.ID(), fmt.Sprintf(format, args...))
}

// Objects checks the rendered objects of one release (manifest and hooks, after
// patches): each must be namespaced and in the release's namespace (no namespace is
// fine: Helm puts it there); a cluster-scoped kind only when the component declares it
// and opts allow it. Kinds unknown offline are taken as namespaced; with opts.Scope
// set (RESTMapperScope), the cluster's REST mapper decides.
func Objects(r Release, objs []*postrender.Object, opts Options) error {
	var errs []error
	for _, o := range objs {
		if o.Kind == "" || o.APIVersion == "" {
			errs = append(errs, r.errorf(o, "apiVersion and kind are required"))
			continue
		}
		if opts.clusterScopedKind(o.Group(), o.Kind) {
			declared := slices.ContainsFunc(r.ClusterScoped, func(gk catalog.GroupKind) bool {
				return gk.Group == o.Group() && gk.Kind == o.Kind
			})
			switch {
			case !declared:
				errs = append(errs, r.errorf(o, "cluster-scoped kind %s, which the component does not declare (component.yaml spec.clusterScoped); a workplace stays in its namespace", groupKind(o)))
			case !opts.AllowClusterScoped:
				errs = append(errs, r.errorf(o, "cluster-scoped kind %s: the component declares it, but this install does not allow cluster-scoped objects", groupKind(o)))
			}
			continue
		}
		if o.Namespace != "" && o.Namespace != r.Namespace {
			errs = append(errs, r.errorf(o, "outside the workplace's namespace %q", r.Namespace))
		}
	}
	return errors.Join(errs...)
}

func groupKind(o *postrender.Object) string {
	if g := o.Group(); g != "" {
		return o.Kind + "." + g
	}
	return o.Kind
}

// clusterScoped are the cluster-scoped kinds of Kubernetes and of common add-ons, by
// group. The list decides offline; unknown kinds count as namespaced.
func clusterScoped(group string) []string {
	switch group {
	case "":
		return []string{"Namespace", "Node", "PersistentVolume", "ComponentStatus"}
	case "rbac.authorization.k8s.io":
		return []string{"ClusterRole", "ClusterRoleBinding"}
	case "apiextensions.k8s.io":
		return []string{"CustomResourceDefinition"}
	case "apiregistration.k8s.io":
		return []string{"APIService"}
	case "admissionregistration.k8s.io":
		return []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
			"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
			"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"}
	case "storage.k8s.io":
		return []string{"StorageClass", "CSIDriver", "CSINode", "VolumeAttachment", "VolumeAttributesClass"}
	case "scheduling.k8s.io":
		return []string{"PriorityClass"}
	case "networking.k8s.io":
		return []string{"IngressClass", "IPAddress", "ServiceCIDR"}
	case "node.k8s.io":
		return []string{"RuntimeClass"}
	case "flowcontrol.apiserver.k8s.io":
		return []string{"FlowSchema", "PriorityLevelConfiguration"}
	case "certificates.k8s.io":
		return []string{"CertificateSigningRequest", "ClusterTrustBundle"}
	case "resource.k8s.io":
		return []string{"DeviceClass"}
	case "authentication.k8s.io":
		return []string{"TokenReview", "SelfSubjectReview"}
	case "authorization.k8s.io":
		return []string{"SubjectAccessReview", "SelfSubjectAccessReview", "SelfSubjectRulesReview"}
	case "policy":
		return []string{"PodSecurityPolicy"}
	case "gateway.networking.k8s.io":
		return []string{"GatewayClass"}
	case "cert-manager.io":
		return []string{"ClusterIssuer"}
	case "metrics.k8s.io":
		return []string{"NodeMetrics"}
	}
	return nil
}

// IsClusterScoped reports whether a kind is cluster-scoped by the built-in list.
func IsClusterScoped(group, kind string) bool {
	return slices.Contains(clusterScoped(strings.ToLower(group)), kind)
}
