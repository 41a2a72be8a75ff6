package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/platzwart/platzwart/reconciler/contract"
)

// Identity is the workplace's identity provider and the OIDC clients its consumers
// sign in with.
type Identity struct {
	// Component fills the identity capability.
	Component string `json:"component"`
	// IssuerURL is the issuer every consumer is configured with.
	IssuerURL string `json:"issuerURL"`
	// External is true for a provider outside the workplace (a wiring-only component):
	// platzwart registers nothing there, so the operator registers every client with
	// the URIs below and creates the Secrets holding their secrets.
	External bool `json:"external,omitempty"`
	// Clients are the consumers' clients, by component name.
	Clients []OIDCClient `json:"clients,omitempty"`
}

// OIDCClient is one consumer's client at the identity provider: what the consumer is
// configured with and what the provider must have registered.
type OIDCClient struct {
	// Component is the consuming component.
	Component string `json:"component"`
	// ClientID is the client's id at the provider.
	ClientID string `json:"clientID"`
	// Public is true for a client without a secret.
	Public bool `json:"public,omitempty"`
	// Secret is where the client secret is (a generated Secret, or the operator's for
	// an external provider); nil for a public client.
	Secret *contract.SecretRef `json:"secret,omitempty"`
	// RootURL is the consumer's public URL the client belongs to.
	RootURL string `json:"rootURL"`
	// RedirectURIs and PostLogoutRedirectURIs are to be registered as they are; a
	// trailing "*" is a prefix registration.
	RedirectURIs           []string `json:"redirectURIs"`
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectURIs,omitempty"`
	// BackchannelLogoutURI is where the provider POSTs logout tokens ("" = none).
	BackchannelLogoutURI string `json:"backchannelLogoutURI,omitempty"`
	// FrontchannelLogoutURI is the page the provider loads at logout ("" = none).
	FrontchannelLogoutURI string `json:"frontchannelLogoutURI,omitempty"`
}

// externalClient is a consumer's client declared in the values of an external
// identity provider: clients.<component>.
type externalClient struct {
	ClientID     string              `json:"clientID"`
	ClientSecret *contract.SecretRef `json:"clientSecret,omitempty"`
}

// isExternal reports whether an identity provider runs outside the workplace: a
// wiring-only component, whose clients the operator registers.
func isExternal(idp *component) bool { return idp != nil && idp.def.Spec.Chart == "" }

// checkExternalIdentity validates the values of an external identity provider: an
// https issuer and, for every selected consumer that signs in, a declared client whose
// secret matches the client's kind (confidential: a Secret reference; public: none).
// It keeps the declared clients for wiring.
func (b *builder) checkExternalIdentity() error {
	idp, ok := b.byCap[contract.Identity]
	if !ok || !isExternal(idp) {
		return nil
	}
	w := b.w
	name := idp.def.Metadata.Name
	field := "spec.values." + name
	var errs []error
	issuer, _ := idp.values["issuerURL"].(string)
	if err := httpsURL(issuer); err != nil {
		errs = append(errs, w.Errorf(field+".issuerURL", "the provider's issuer: %v", err))
	}
	raw, _ := idp.values["clients"].(map[string]any)
	if v, set := idp.values["clients"]; set && raw == nil {
		errs = append(errs, w.Errorf(field+".clients", "expected a mapping of component to {clientID, clientSecret}, got %T", v))
	}
	b.external = map[string]externalClient{}
	for _, consumer := range sortedKeys(raw) {
		f := field + ".clients." + consumer
		def, known := b.cat.Components[consumer]
		if !known {
			errs = append(errs, w.Errorf(f, "unknown component %q", consumer))
			continue
		}
		if def.Spec.OIDCClient == nil {
			errs = append(errs, w.Errorf(f, "component %q does not sign in over OIDC (%s declares no oidcClient)", consumer, def.File))
			continue
		}
		ec, err := decodeClient(raw[consumer])
		if err != nil {
			errs = append(errs, w.Errorf(f, "%v", err))
			continue
		}
		if ec.ClientID == "" {
			errs = append(errs, w.Errorf(f+".clientID", "required: the id of the client registered at the provider"))
		}
		switch {
		case def.Spec.OIDCClient.PublicClient && ec.ClientSecret != nil:
			errs = append(errs, w.Errorf(f+".clientSecret", "component %q signs in as a public client (%s: spec.oidcClient.publicClient), which has no secret: remove clientSecret and register a public client", consumer, def.File))
		case !def.Spec.OIDCClient.PublicClient && ec.ClientSecret == nil:
			errs = append(errs, w.Errorf(f+".clientSecret", "required: component %q signs in as a confidential client; name the Secret {name, key} in namespace %s holding the secret the provider issued", consumer, w.Namespace))
		case ec.ClientSecret != nil && (ec.ClientSecret.Name == "" || ec.ClientSecret.Key == ""):
			errs = append(errs, w.Errorf(f+".clientSecret", "name and key are both required"))
		}
		b.external[consumer] = ec
	}
	for _, cname := range sortedKeys(b.byName) {
		c := b.byName[cname]
		if c.def.Spec.OIDCClient == nil || !b.consumesIdentity(c) {
			continue
		}
		if _, ok := raw[cname]; !ok {
			errs = append(errs, w.Errorf(field+".clients."+cname, "required: component %q signs in over OIDC; register a client for it at the provider (the URIs are in `platzwart plan`) and declare {clientID, clientSecret: {name, key}}", cname))
		}
	}
	return errors.Join(errs...)
}

// consumesIdentity reports whether c is wired to the identity provider.
func (b *builder) consumesIdentity(c *component) bool {
	idp, ok := b.byCap[contract.Identity]
	if !ok {
		return false
	}
	for _, d := range c.deps {
		if d == idp.def.Metadata.Name {
			return true
		}
	}
	return false
}

// client returns the id and secret reference consumer c signs in with at provider
// idp: declared by the operator for an external provider, otherwise the component's
// name and its generated Secret (nil for a public client).
func (b *builder) client(c, idp *component) (string, *contract.SecretRef) {
	name := c.def.Metadata.Name
	if isExternal(idp) {
		ec := b.external[name]
		return ec.ClientID, ec.ClientSecret
	}
	if c.def.Spec.OIDCClient.PublicClient {
		return name, nil
	}
	ref := contract.OIDCClientSecret(b.releaseOrName(c))
	return name, &ref
}

func decodeClient(v any) (externalClient, error) {
	var ec externalClient
	data, err := json.Marshal(v)
	if err != nil {
		return ec, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ec); err != nil {
		return ec, fmt.Errorf("expected {clientID, clientSecret: {name, key}}: %w", err)
	}
	return ec, nil
}

// httpsURL accepts an absolute https URL with a host, no query and no fragment.
func httpsURL(s string) error {
	if s == "" {
		return fmt.Errorf("required (an https URL)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an https URL: OIDC clients accept only https issuers", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "?") {
		return fmt.Errorf("%q: an issuer has no query or fragment (OpenID Connect Discovery 1.0, 4)", s)
	}
	return nil
}
