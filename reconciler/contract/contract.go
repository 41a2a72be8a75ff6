// Package contract defines the grant capabilities of a workplace (identity, postgres,
// redis: what their providers export and mint for each consumer) and the names of the
// Secrets that wiring creates. Application capabilities are data in the catalog
// (reconciler/catalog CapabilityDoc); components are open (any catalog may add one).
package contract

import (
	"fmt"
)

// Names of the capabilities the code refers to. Identity, Postgres and Redis are the
// grant capabilities: their wiring (an OIDC client, a database and user, a key-value
// login per consumer) is code, see Grant. The others are application capabilities,
// declared as data in the built-in catalog's capabilities/ folder like any an
// operator's repository adds (docs/adr/0014-application-capabilities-are-data.md);
// their names are here only where code treats them specially (probes by kind).
const (
	Identity = "identity"
	Postgres = "postgres"
	Redis    = "redis"

	Chat   = "chat"
	Video  = "video"
	Files  = "files"
	Office = "office"
	Portal = "portal"
	Mail   = "mail"
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

// Grant returns the grant capability of that name: identity, postgres or redis.
func Grant(name string) (Capability, bool) {
	switch name {
	case Identity:
		return Capability{Name: name, Exports: []string{"issuerURL"},
			Description: "single sign-on: an OIDC issuer and one client per consuming component"}, true
	case Postgres:
		return Capability{Name: name, Infrastructure: true, Exports: []string{"host", "port"},
			Description: "PostgreSQL: one database and one user per consumer"}, true
	case Redis:
		return Capability{Name: name, Infrastructure: true, Exports: []string{"host", "port"},
			Description: "a Redis-protocol key-value store"}, true
	}
	return Capability{}, false
}

// GrantNames returns the grant capabilities' names, sorted.
func GrantNames() []string { return []string{Identity, Postgres, Redis} }

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
