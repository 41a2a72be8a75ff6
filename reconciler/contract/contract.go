// Package contract defines the capabilities of a workplace and what their providers
// export and their consumers receive. Components are open (any catalog may add one);
// capabilities are this fixed set, because the wiring of each is code.
package contract

import (
	"fmt"
	"sort"
)

// Capability names.
const (
	Identity = "identity"
	Chat     = "chat"
	Video    = "video"
	Files    = "files"
	Office   = "office"
	Postgres = "postgres"
	Redis    = "redis"
	Portal   = "portal"
	Mail     = "mail"
)

// Capability is a role in the workplace and its contract.
type Capability struct {
	// Name of the capability.
	Name string
	// Infrastructure is true for roles that serve other components (postgres, redis).
	Infrastructure bool
	// Exports are the keys a provider's exports template must produce.
	Exports []string
	// Description says what the role is, for the catalog listing.
	Description string
}

// Lookup returns the capability of that name.
func Lookup(name string) (Capability, bool) {
	switch name {
	case Identity:
		return Capability{Name: name, Exports: []string{"issuerURL"},
			Description: "single sign-on: an OIDC issuer and one client per consuming component"}, true
	case Chat:
		return Capability{Name: name, Exports: []string{"url"},
			Description: "team chat: a web client and its server"}, true
	case Video:
		return Capability{Name: name, Exports: []string{"url", "kind"},
			Description: "video conferencing"}, true
	case Files:
		return Capability{Name: name, Exports: []string{"url"},
			Description: "file sync and share"}, true
	case Office:
		return Capability{Name: name, Exports: []string{"url", "kind"},
			Description: "collaborative editing of office documents (WOPI)"}, true
	case Mail:
		return Capability{Name: name, Exports: []string{"url", "host", "domain", "smtpHost", "smtpPort"},
			Description: "mail, calendars and contacts: web client, IMAP, SMTP submission, CalDAV and CardDAV"}, true
	case Portal:
		return Capability{Name: name, Exports: []string{"url"},
			Description: "a start page listing every selected app (its tile) behind single sign-on"}, true
	case Postgres:
		return Capability{Name: name, Infrastructure: true, Exports: []string{"host", "port"},
			Description: "PostgreSQL: one database and one user per consumer"}, true
	case Redis:
		return Capability{Name: name, Infrastructure: true, Exports: []string{"host", "port"},
			Description: "a Redis-protocol key-value store"}, true
	}
	return Capability{}, false
}

// Names returns every capability name, sorted.
func Names() []string {
	names := []string{Identity, Chat, Video, Files, Office, Postgres, Redis, Portal, Mail}
	sort.Strings(names)
	return names
}

// SecretRef points at one key of a Secret in the workplace's namespace.
type SecretRef struct {
	// Name of the Secret.
	Name string `json:"name"`
	// Key in the Secret's data.
	Key string `json:"key"`
}

// Map returns the reference as a template value.
func (r SecretRef) Map() map[string]any { return map[string]any{"name": r.Name, "key": r.Key} }

// OIDCClientSecret is the Secret holding the OIDC client secret of a consumer release.
func OIDCClientSecret(consumerRelease string) SecretRef {
	return SecretRef{Name: consumerRelease + "-oidc", Key: "client-secret"}
}

// DatabasePasswordSecret is the generated Secret holding a consumer's database password
// on an in-cluster PostgreSQL.
func DatabasePasswordSecret(consumerRelease, database string) SecretRef {
	return SecretRef{Name: fmt.Sprintf("%s-db-%s", consumerRelease, database), Key: "password"}
}

// ExternalDatabasePasswordSecret is the key of the operator's credentials Secret holding
// a consumer's password on an external PostgreSQL server.
func ExternalDatabasePasswordSecret(credentialsSecret, database string) SecretRef {
	return SecretRef{Name: credentialsSecret, Key: database + "-password"}
}

// ComponentSecret is the name of a component's own generated Secret.
func ComponentSecret(release, name string) string { return release + "-" + name }

// TLSSecret is the name of the workplace's wildcard certificate Secret when the
// TLS mode is SelfSigned.
func TLSSecret(workplace string) string { return workplace + "-tls" }

// ReleaseName is the Helm release name of a component in a workplace.
func ReleaseName(workplace, component string) string { return workplace + "-" + component }
