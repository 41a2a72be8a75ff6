package plan

import (
	"fmt"

	"github.com/platzwart/platzwart/api/v1alpha1"
)

// SelfSignedCAKey is the key of the generated TLS Secret (<workplace>-tls) that holds
// the CA certificate in TLS mode SelfSigned.
const SelfSignedCAKey = "ca.crt"

// DefaultCAKey is the key of spec.routing.tls.caSecret when it names none.
const DefaultCAKey = "ca.crt"

// caSecretValue is the routing value tls.caSecret: the Secret key holding the PEM
// certificate of the CA every HTTPS client inside the workplace must trust; an empty
// name means a public CA (the images' system stores). The key is never empty.
func caSecretValue(ref *v1alpha1.SecretKeyRef) map[string]any {
	if ref == nil || ref.Name == "" {
		return map[string]any{"name": "", "key": DefaultCAKey}
	}
	key := ref.Key
	if key == "" {
		key = DefaultCAKey
	}
	return map[string]any{"name": ref.Name, "key": key}
}

// trustedCA reads the CA Secret key back from the routing value, nil when the
// hosts' certificates come from a public CA or there is no TLS.
func trustedCA(routing map[string]any) *v1alpha1.SecretKeyRef {
	tls, _ := routing["tls"].(map[string]any)
	ca, _ := tls["caSecret"].(map[string]any)
	name, _ := ca["name"].(string)
	if name == "" {
		return nil
	}
	key, _ := ca["key"].(string)
	return &v1alpha1.SecretKeyRef{Name: name, Key: key}
}

// checkTLS refuses routing whose certificates cannot work with the selected
// components: a CA Secret in a mode that has its own CA or none, and public hosts
// served without TLS through Ingress or Gateway while a component signs in over OIDC
// (the identity provider's issuer is an https URL, and every OIDC client checks it).
func (b *builder) checkTLS() error {
	r := b.profile.routing
	field := "spec.routing.tls"
	origin := fmt.Sprintf(" (set by profile %q)", b.w.Spec.Profile)
	if o := b.w.Spec.Routing; o != nil {
		if o.TLS != nil {
			origin = ""
		}
		r = mergeRouting(r, *o)
	}
	tlsMode := v1alpha1.TLSNone // no tls or an empty mode serves no certificates
	if r.TLS != nil && r.TLS.Mode != "" {
		tlsMode = r.TLS.Mode
	}
	if r.TLS != nil && r.TLS.CASecret != nil {
		switch tlsMode {
		case v1alpha1.TLSSelfSigned:
			return b.w.Errorf(field+".caSecret", "only for modes Issuer and Secret: mode SelfSigned%s always trusts ca.crt of the generated Secret %q", origin, b.w.Name+"-tls")
		case v1alpha1.TLSNone:
			return b.w.Errorf(field+".caSecret", "only for modes Issuer and Secret: mode None%s serves no certificates", origin)
		}
		if r.TLS.CASecret.Name == "" {
			return b.w.Errorf(field+".caSecret.name", "required when caSecret is set%s", origin)
		}
	}
	if tlsMode != v1alpha1.TLSNone {
		return nil
	}
	mode := r.Mode
	if mode == "" {
		mode = v1alpha1.RoutingIngress
	}
	if mode == v1alpha1.RoutingNone {
		return nil
	}
	idp, ok := b.byCap["identity"]
	if !ok {
		return nil
	}
	for _, capName := range sortedKeys(b.byCap) {
		c := b.byCap[capName]
		if c.def.Spec.OIDCClient == nil {
			continue
		}
		return b.w.Errorf(field+".mode", "None%s serves the public hosts over plain HTTP through %s, but component %q signs in over OIDC with %q, whose issuer must be an https URL: use SelfSigned, Issuer or Secret, or routing mode None with TLS terminated in front of the cluster",
			origin, mode, c.def.Metadata.Name, idp.def.Metadata.Name)
	}
	return nil
}
