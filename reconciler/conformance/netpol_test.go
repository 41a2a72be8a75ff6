package conformance_test

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// checkNetworkPolicies: the routing controller reaches every public backend, and
// every consumer's pods reach a Service of each provider they consume.
func checkNetworkPolicies(t reporter, cat *catalog.Catalog, p *plan.Plan, w workplace, rm routingMode) {
	t.Helper()
	ctrl := source{namespace: rm.controllerNamespace, labels: map[string]string{}}
	all := allPolicies(w)
	for _, r := range p.Releases {
		o := w[r.Name]
		var backends []backend
		for _, ing := range o.ingresses {
			for _, rule := range ing.Spec.Rules {
				if rule.HTTP == nil {
					continue
				}
				for _, hp := range rule.HTTP.Paths {
					if s := hp.Backend.Service; s != nil {
						port := intstr.FromInt32(s.Port.Number)
						if s.Port.Name != "" {
							port = intstr.FromString(s.Port.Name)
						}
						backends = append(backends, backend{s.Name, port})
					}
				}
			}
		}
		for _, rt := range o.routes {
			for _, b := range rt.backends {
				name, _ := b["name"].(string)
				var port int32
				switch v := b["port"].(type) {
				case int64:
					port = int32(v)
				case float64:
					port = int32(v)
				}
				backends = append(backends, backend{name, intstr.FromInt32(port)})
			}
		}
		for _, b := range backends {
			svc := service(w, b.service)
			if svc == nil {
				t.Errorf("%s: routes to Service %s, which the workplace does not have", r.Name, b.service)
				continue
			}
			sp := servicePort(svc, b.port)
			if sp == nil {
				t.Errorf("%s: routes to Service %s port %s, which it does not have", r.Name, b.service, b.port.String())
				continue
			}
			if why := admitted(w, all, svc, *sp, ctrl); why != "" {
				t.Errorf("%s: the routing controller (namespace %q) cannot reach Service %s port %s: %s", r.Name, rm.controllerNamespace, svc.Name, sp.Name, why)
			}
		}
	}
	// Capability edges to providers without public hosts (postgres, redis):
	// every pod of the consumer reaches a Service of the provider.
	byCap := map[string]string{}
	for _, s := range p.Components {
		if s.Release != "" {
			byCap[s.Capability] = s.Release
		}
	}
	hosts := map[string]bool{}
	for _, r := range p.Releases {
		hosts[r.Name] = len(r.Hosts) > 0
	}
	for _, r := range p.Releases {
		def := cat.Components[r.Component]
		for _, capName := range append(append([]string{}, def.Spec.Consumes...), def.Spec.Optional...) {
			prov, ok := byCap[capName]
			// A provider with public hosts is reached through its URL, that is through
			// the routing controller (checked above); the others by their Service.
			if !ok || prov == r.Name || hosts[prov] {
				continue
			}
			for _, pd := range w[r.Name].pods {
				src := source{namespace: namespace, labels: pd.labels}
				var reasons []string
				ok := false
				for _, svc := range w[prov].services {
					why := ""
					for _, sp := range svc.Spec.Ports {
						if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
							continue
						}
						if why = admitted(w, all, &svc, sp, src); why != "" {
							break
						}
					}
					if why == "" {
						ok = true
						break
					}
					reasons = append(reasons, svc.Name+": "+why)
				}
				if !ok {
					t.Errorf("%s (%s) consumes %s, but %s reaches no Service of %s: %s", r.Name, pd.workload, capName, pd.workload, prov, strings.Join(reasons, "; "))
				}
			}
		}
	}
}

type backend struct {
	service string
	port    intstr.IntOrString
}

// source is a client pod: its namespace and labels.
type source struct {
	namespace string
	labels    map[string]string
}

func allPolicies(w workplace) []networkingv1.NetworkPolicy {
	var out []networkingv1.NetworkPolicy
	for _, rel := range sortedKeys(w) {
		out = append(out, w[rel].policies...)
	}
	return out
}

func service(w workplace, name string) *corev1.Service {
	for _, rel := range sortedKeys(w) {
		for i, s := range w[rel].services {
			if s.Name == name {
				return &w[rel].services[i]
			}
		}
	}
	return nil
}

func servicePort(s *corev1.Service, port intstr.IntOrString) *corev1.ServicePort {
	for i, sp := range s.Spec.Ports {
		if (port.Type == intstr.String && sp.Name == port.StrVal) || (port.Type == intstr.Int && sp.Port == port.IntVal) {
			return &s.Spec.Ports[i]
		}
	}
	return nil
}

// admitted explains why src cannot reach the pods behind svc on sp under
// Kubernetes NetworkPolicy semantics (ingress rules only), or returns "".
func admitted(w workplace, policies []networkingv1.NetworkPolicy, svc *corev1.Service, sp corev1.ServicePort, src source) string {
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var pods []pod
	for _, rel := range sortedKeys(w) {
		for _, pd := range w[rel].pods {
			if len(svc.Spec.Selector) > 0 && sel.Matches(labels.Set(pd.labels)) {
				pods = append(pods, pd)
			}
		}
	}
	if len(pods) == 0 {
		return fmt.Sprintf("Service %s selects no pod", svc.Name)
	}
	for _, pd := range pods {
		num, name := targetPort(pd, sp)
		var applying []string
		allowed := false
		for _, np := range policies {
			if !selects(np.Spec.PodSelector, pd.labels) || !isIngress(np) {
				continue
			}
			applying = append(applying, np.Name)
			for _, rule := range np.Spec.Ingress {
				if portMatches(rule.Ports, num, name) && peerMatches(rule.From, src) {
					allowed = true
				}
			}
		}
		if len(applying) > 0 && !allowed {
			return fmt.Sprintf("%s port %d is isolated by %s and none admits it", pd.workload, num, strings.Join(applying, ", "))
		}
	}
	return ""
}

func isIngress(np networkingv1.NetworkPolicy) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return true
	}
	return slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
}

func selects(s metav1.LabelSelector, l map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(&s)
	return err == nil && sel.Matches(labels.Set(l))
}

// targetPort resolves a Service port to the container port number and name of pd.
func targetPort(pd pod, sp corev1.ServicePort) (int32, string) {
	tp := sp.TargetPort
	if tp.Type == intstr.Int && tp.IntVal == 0 {
		tp = intstr.FromInt32(sp.Port)
	}
	for _, c := range pd.spec.Containers {
		for _, cp := range c.Ports {
			if (tp.Type == intstr.String && cp.Name == tp.StrVal) || (tp.Type == intstr.Int && cp.ContainerPort == tp.IntVal) {
				return cp.ContainerPort, cp.Name
			}
		}
	}
	if tp.Type == intstr.Int {
		return tp.IntVal, ""
	}
	return 0, tp.StrVal
}

func portMatches(ports []networkingv1.NetworkPolicyPort, num int32, name string) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil {
			return true
		}
		if p.Port.Type == intstr.Int && p.Port.IntVal == num {
			return true
		}
		if p.EndPort != nil && p.Port.Type == intstr.Int && num >= p.Port.IntVal && num <= *p.EndPort {
			return true
		}
		if p.Port.Type == intstr.String && name != "" && p.Port.StrVal == name {
			return true
		}
	}
	return false
}

func peerMatches(peers []networkingv1.NetworkPolicyPeer, src source) bool {
	if len(peers) == 0 {
		return true
	}
	nsLabels := map[string]string{"kubernetes.io/metadata.name": src.namespace}
	for _, p := range peers {
		switch {
		case p.IPBlock != nil:
			continue // pod IPs are not known offline
		case p.NamespaceSelector != nil:
			if selects(*p.NamespaceSelector, nsLabels) && (p.PodSelector == nil || selects(*p.PodSelector, src.labels)) {
				return true
			}
		case p.PodSelector != nil:
			if src.namespace == namespace && selects(*p.PodSelector, src.labels) {
				return true
			}
		}
	}
	return false
}
