package conformance_test

import (
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// checkHosts: every public host of every release is served, with TLS exactly as
// the mode says, and nothing else is.
func checkHosts(t reporter, p *plan.Plan, w workplace, rm routingMode, tm tlsMode) {
	t.Helper()
	for _, r := range p.Releases {
		o := w[r.Name]
		want := map[string]bool{}
		for _, h := range r.Hosts {
			want[h] = true
		}
		served := map[string]bool{}
		switch rm.name {
		case "Ingress":
			if len(o.routes) > 0 {
				t.Errorf("%s: routing mode Ingress renders HTTPRoutes", r.Name)
			}
			for _, ing := range o.ingresses {
				checkIngressTLS(t, r.Name, ing, rm, tm)
				for _, rule := range ing.Spec.Rules {
					served[rule.Host] = true
				}
			}
		case "Gateway":
			if len(o.ingresses) > 0 {
				t.Errorf("%s: routing mode Gateway renders Ingresses", r.Name)
			}
			for _, rt := range o.routes {
				for k := range rt.annotations {
					if strings.HasPrefix(k, "cert-manager.io/") {
						t.Errorf("%s: HTTPRoute/%s: cert-manager annotation %s (TLS is the Gateway listener's)", r.Name, rt.name, k)
					}
				}
				if len(rt.parents) == 0 {
					t.Errorf("%s: HTTPRoute/%s has no parentRefs", r.Name, rt.name)
				}
				for _, pr := range rt.parents {
					if pr["name"] != "workplace" || pr["namespace"] != gatewayNS || pr["sectionName"] != "https" {
						t.Errorf("%s: HTTPRoute/%s parentRef %v, want the workplace's Gateway %s/workplace section https", r.Name, rt.name, pr, gatewayNS)
					}
				}
				for _, h := range rt.hostnames {
					served[h] = true
				}
			}
		}
		for _, h := range sortedKeys(want) {
			if !served[h] {
				t.Errorf("%s: public host %s is not served (routing %s)", r.Name, h, rm.name)
			}
		}
		for _, h := range sortedKeys(served) {
			if !want[h] {
				t.Errorf("%s: serves host %s, which is not one of its public hosts %v", r.Name, h, sortedKeys(want))
			}
		}
	}
}

func checkIngressTLS(t reporter, release string, ing networkingv1.Ingress, rm routingMode, tm tlsMode) {
	t.Helper()
	id := release + ": Ingress/" + ing.Name
	if got := ptrString(ing.Spec.IngressClassName); got != rm.className {
		t.Errorf("%s: ingressClassName %q, want %q", id, got, rm.className)
	}
	for k, v := range ing.Annotations {
		if !strings.HasPrefix(k, "cert-manager.io/") {
			continue
		}
		if k != tm.annotation || v != tm.issuer {
			t.Errorf("%s: annotation %s=%s, want %s", id, k, v, orNone(tm.annotation, tm.issuer))
		}
	}
	if tm.annotation != "" && ing.Annotations[tm.annotation] != tm.issuer {
		t.Errorf("%s: lacks annotation %s=%s", id, tm.annotation, tm.issuer)
	}
	covered := map[string]string{}
	for _, e := range ing.Spec.TLS {
		for _, h := range e.Hosts {
			covered[h] = e.SecretName
		}
	}
	for _, rule := range ing.Spec.Rules {
		secret, ok := covered[rule.Host]
		switch {
		case tm.none && ok:
			t.Errorf("%s: host %s has TLS (Secret %q) in TLS mode None", id, rule.Host, secret)
		case tm.none:
		case !ok:
			t.Errorf("%s: host %s has no TLS entry (TLS mode %s)", id, rule.Host, tm.name)
		case tm.secretName != "" && secret != tm.secretName:
			t.Errorf("%s: host %s uses Secret %q, want %q", id, rule.Host, secret, tm.secretName)
		case tm.secretName == "" && (secret == "" || secret == contract.TLSSecret(workplaceName)):
			t.Errorf("%s: host %s uses Secret %q, want a release's own Secret for cert-manager", id, rule.Host, secret)
		}
	}
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func orNone(k, v string) string {
	if k == "" {
		return "none"
	}
	return k + "=" + v
}

// checkUniqueHosts: a host is served by one release only; the bare domain may be
// shared by path, each path by one release.
func checkUniqueHosts(t reporter, w workplace) {
	t.Helper()
	owner := map[string]string{}
	certSecret := map[string]string{}
	for _, rel := range sortedKeys(w) {
		o := w[rel]
		claim := func(host, p string) {
			key := host
			if host == domain {
				key = host + p
			}
			if prev, ok := owner[key]; ok && prev != rel {
				t.Errorf("host %s%s is served by %s and by %s", host, p, prev, rel)
			}
			owner[key] = rel
		}
		for _, ing := range o.ingresses {
			for _, rule := range ing.Spec.Rules {
				if rule.HTTP == nil {
					claim(rule.Host, "/")
					continue
				}
				for _, hp := range rule.HTTP.Paths {
					claim(rule.Host, hp.Path)
				}
			}
			if len(ing.Annotations) > 0 {
				for _, e := range ing.Spec.TLS {
					if prev, ok := certSecret[e.SecretName]; ok && e.SecretName != "" && (ing.Annotations["cert-manager.io/cluster-issuer"] != "" || ing.Annotations["cert-manager.io/issuer"] != "") {
						t.Errorf("cert-manager Secret %s is requested by %s and by %s/%s", e.SecretName, prev, rel, ing.Name)
					}
					certSecret[e.SecretName] = rel + "/" + ing.Name
				}
			}
		}
		for _, rt := range o.routes {
			for _, h := range rt.hostnames {
				for _, p := range rt.paths {
					claim(h, p)
				}
			}
		}
	}
}
