package catalog

import (
	"time"

	"github.com/platzwart/platzwart/api/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kinds of catalog documents.
const (
	ComponentKind = "Component"
	ProfileKind   = "Profile"
)

// Meta is the metadata of a catalog document.
type Meta struct {
	// Name of the component or profile.
	Name string `json:"name"`
}

// Component is one implementation of one capability: a catalog entry and its chart.
type Component struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   Meta          `json:"metadata"`
	Spec       ComponentSpec `json:"spec"`

	// File is where the component was read from (not part of the document).
	File string `json:"-"`
}

// ComponentSpec describes a component, its needs and how the contract maps onto its chart.
type ComponentSpec struct {
	// Capability is the role the component fills.
	Capability string `json:"capability"`
	// Description is one paragraph for the catalog listing.
	Description string `json:"description,omitempty"`
	// Licence is the SPDX identifier of the upstream product's licence.
	Licence string `json:"licence"`
	// URL is the upstream project's address.
	URL string `json:"url"`
	// Chart is the chart directory (charts/<name>); empty for wiring-only components.
	Chart string `json:"chart,omitempty"`
	// Consumes lists capabilities that must be selected.
	Consumes []string `json:"consumes,omitempty"`
	// Optional lists capabilities used when selected.
	Optional []string `json:"optional,omitempty"`
	// Hosts are the public hostnames the component serves.
	Hosts []Host `json:"hosts,omitempty"`
	// DNS are the records the component needs in the workplace's zone beyond the
	// address records of its hosts (MX, SPF, DKIM, DMARC, SRV, ...): `platzwart dns`
	// lists them and `platzwart check` compares them with what DNS answers.
	DNS []DNSRecord `json:"dns,omitempty"`
	// OIDCClient is the client the component needs at the identity provider.
	OIDCClient *OIDCClient `json:"oidcClient,omitempty"`
	// Tile is how the workplace's portal lists the component; nil = not listed.
	Tile *Tile `json:"tile,omitempty"`
	// Databases are the PostgreSQL databases the component needs.
	Databases []Database `json:"databases,omitempty"`
	// Secrets are generated once in the cluster and referenced by name.
	Secrets []Secret `json:"secrets,omitempty"`
	// Images are every image the chart runs, pinned.
	Images []string `json:"images,omitempty"`
	// Timeout is how long the release may take to become ready.
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// ClusterScoped lists the cluster-scoped kinds the chart renders (CRDs, cluster
	// roles, ...). Any other cluster-scoped object is refused, and these only when the
	// install allows cluster-scoped objects (render's guard options).
	ClusterScoped []GroupKind `json:"clusterScoped,omitempty"`
	// Exports is the template of what a provider exports to its consumers.
	Exports string `json:"exports,omitempty"`
	// Values is the template mapping the contract onto the chart's values.
	Values string `json:"values,omitempty"`
	// Trust lists the containers of the chart that call other components' public
	// URLs over HTTPS and how each is given the workplace's CA (routing.tls.caSecret).
	Trust []TrustClient `json:"trust,omitempty"`
	// Versions are the component's versions, oldest first, and the rules for
	// upgrading between them. The newest is what Chart, Values and Images render;
	// older ones are overlays on them. Empty: the component is not versioned and an
	// upgrade is one step to whatever the chart renders.
	Versions []Version `json:"versions,omitempty"`
}

// Version is one version of a component: what it runs and how it may be reached.
type Version struct {
	// Version is the upstream product's version ("34.0.4", "v1.162.0", "18.6"),
	// compared as a semantic version (a leading "v" and missing minor or patch
	// numbers are allowed; no build metadata, so that it fits a label value).
	Version string `json:"version"`
	// Chart is the chart directory of this version; default spec.chart. The newest
	// version always uses spec.chart.
	Chart string `json:"chart,omitempty"`
	// Images are the images this version runs. Required on every version but the
	// newest, whose images are spec.images.
	Images []string `json:"images,omitempty"`
	// Values is a template like spec.values, merged over its output for this version
	// (the image tags of an older version, say). Not allowed on the newest version.
	Values string `json:"values,omitempty"`
	// From is a constraint on the deployed version an upgrade to this version may
	// start from, e.g. ">=33.0.0 <34.0.0" (github.com/Masterminds/semver syntax:
	// space-separated comparisons must all hold, "||" separates alternatives).
	// Empty: any older version.
	From string `json:"from,omitempty"`
	// Mandatory makes this version a stepping stone: an upgrade from an older version
	// to a newer one stops here and takes it as a step of its own.
	Mandatory bool `json:"mandatory,omitempty"`
	// Risky says that reaching this version changes stored data in a way only a
	// backup undoes (schema migrations on start, a new data format): the engine
	// backs the component's data up before the step.
	Risky bool `json:"risky,omitempty"`
	// Migrations are Jobs run before or after the upgrade to this version, in order.
	// They run on steps of an upgrade path only, never on a first install.
	Migrations []Migration `json:"migrations,omitempty"`
}

// Phase says when a migration runs.
type Phase string

const (
	// PhasePre runs the migration after the previous step is ready and before the
	// upgrade to its version starts.
	PhasePre Phase = "pre"
	// PhasePost runs the migration once the upgrade to its version is ready.
	PhasePost Phase = "post"
)

// DefaultMigrationTimeout bounds a migration Job whose declaration sets no timeout.
const DefaultMigrationTimeout = 10 * time.Minute

// Migration is a Job run on the way to a version.
type Migration struct {
	// Name identifies the migration within its version (a DNS-1123 label).
	Name string `json:"name"`
	// Phase is pre or post.
	Phase Phase `json:"phase"`
	// Timeout bounds the Job (default DefaultMigrationTimeout).
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// From limits the migration to steps starting from a version that meets this
	// constraint (Version.From's syntax), e.g. "<18.0.0" for what only a major
	// upgrade needs. Empty: every step to the version.
	From string `json:"from,omitempty"`
	// StopConsumers stops the components that depend on this one for the step: the
	// engine scales their Deployments and StatefulSets to zero before the step's
	// backup (so the dump is what they wrote last) and back once the step's
	// post-migrations completed.
	StopConsumers bool `json:"stopConsumers,omitempty"`
	// Job is a template like spec.values whose output is a batch/v1 JobSpec.
	Job string `json:"job"`
}

// TrustClient is a container that must trust the workplace's CA: when
// routing.tls.caSecret names a Secret, the container mounts that key and Env holds
// the path of the CA file, or of a bundle an init container built from it.
type TrustClient struct {
	// Container is the container's name in the chart's workloads (hooks included).
	Container string `json:"container"`
	// Env is the environment variable holding the path: the runtime's own (e.g.
	// SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, DENO_CERT) or the chart's, when the
	// runtime takes the CA another way (Runtime says which, docs/catalog.md).
	Env string `json:"env"`
	// Flag, when set, is the option inside Env's value that carries the path
	// (Env then holds an options string, e.g. coolwsd's extra_params with
	// "--o:storage.ssl.ca_file_path=").
	Flag string `json:"flag,omitempty"`
	// Runtime is the client's runtime: python, php, java, node, deno, ruby, go,
	// rust, nginx or openssl (C/C++ on OpenSSL): the rows of docs/catalog.md's trust
	// table.
	Runtime string `json:"runtime"`
}

// GroupKind names a kind: its API group ("" for the core group) and kind.
type GroupKind struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
}

// Host is a public hostname: <subdomain>.<domain>.
type Host struct {
	// Name is the key of the host in templates.
	Name string `json:"name"`
	// Subdomain is prepended to the workplace domain; "" or "@" is the domain itself.
	Subdomain string `json:"subdomain"`
	// Service, when set, says the host is reached at the external address of the
	// chart's Service <release>-<service> (a LoadBalancer or NodePort for non-HTTP
	// protocols such as SMTP and IMAP) rather than at the routing's ingress or
	// gateway: `platzwart dns` points the host's address records there.
	Service string `json:"service,omitempty"`
}

// DNS record types a component may declare besides its hosts' address records.
const (
	DNSMX    = "MX"
	DNSTXT   = "TXT"
	DNSSRV   = "SRV"
	DNSCNAME = "CNAME"
	// DNSDKIM is a TXT record at <selector>._domainkey carrying the public half of
	// a generated private key (v=DKIM1; k=rsa; p=...), derived when the records are
	// listed: the private key never leaves its Secret.
	DNSDKIM = "DKIM"
)

// DNSRecord is one record of the workplace's zone a component needs.
type DNSRecord struct {
	// Type is MX, TXT, SRV, CNAME or DKIM.
	Type string `json:"type"`
	// Name is relative to the workplace's domain: "@" for the domain itself,
	// "_dmarc", "_submissions._tcp", "autoconfig". Not used by DKIM (its name is
	// <selector>._domainkey).
	Name string `json:"name,omitempty"`
	// TTL in seconds (default 3600).
	TTL int `json:"ttl,omitempty"`
	// Host is the key of one of the component's hosts: the target of MX, SRV and
	// CNAME records.
	Host string `json:"host,omitempty"`
	// Priority of MX and SRV records; Weight and Port of SRV records.
	Priority int `json:"priority,omitempty"`
	Weight   int `json:"weight,omitempty"`
	Port     int `json:"port,omitempty"`
	// Text of a TXT record: a template with .Workplace, .Component, .Release,
	// .Hosts and .URLs, e.g. "v=DMARC1; p=quarantine" (docs/catalog.md).
	Text string `json:"text,omitempty"`
	// Selector, Secret and Key make a DKIM record: the DKIM selector, the name of
	// one of spec.secrets and the key in it holding the private key (format rsa).
	Selector string `json:"selector,omitempty"`
	Secret   string `json:"secret,omitempty"`
	Key      string `json:"key,omitempty"`
}

// Tile is a component's entry on the workplace's start page (the portal capability):
// what people see and where it leads.
type Tile struct {
	// Name is the tile's title ("Files", "Chat").
	Name string `json:"name"`
	// Description is one short line under the title.
	Description string `json:"description,omitempty"`
	// Host names which of the component's hosts the tile links to.
	Host string `json:"host"`
	// Path is appended to the host's URL; a template with the context of
	// spec.values before wiring (.Workplace, .Hosts, ...), e.g.
	// /realms/{{ .Workplace.Name }}/account/. Empty: "/".
	Path string `json:"path,omitempty"`
	// Icon is a small SVG or PNG file in the component's folder (icon.svg) or a
	// data:image/svg+xml or data:image/png URI. Empty: the portal shows the name's
	// first letter.
	Icon string `json:"icon,omitempty"`

	// IconURI is Icon as a data: URI, read when the catalog is loaded (not part of
	// the document).
	IconURI string `json:"-"`
}

// OIDCClient is the client a component needs at the identity provider.
type OIDCClient struct {
	// Host names which of the component's hosts is the client's root URL.
	Host string `json:"host"`
	// RedirectPaths are appended to the root URL to form the redirect URIs.
	RedirectPaths []string `json:"redirectPaths"`
	// PostLogoutRedirectPaths are appended to the root URL likewise.
	PostLogoutRedirectPaths []string `json:"postLogoutRedirectPaths,omitempty"`
	// BackchannelLogoutPath, appended to the root URL, is where the identity
	// provider POSTs OIDC back-channel logout tokens; empty = none.
	BackchannelLogoutPath string `json:"backchannelLogoutPath,omitempty"`
	// FrontchannelLogoutPath, appended to the root URL, is the page the identity
	// provider loads in an iframe at logout (OIDC front-channel logout); empty = none.
	FrontchannelLogoutPath string `json:"frontchannelLogoutPath,omitempty"`
	// PublicClient is true for a client without a secret.
	PublicClient bool `json:"publicClient,omitempty"`
}

// Database is a PostgreSQL database and user a component needs.
type Database struct {
	// Name is the database and user name; unique in a workplace.
	Name string `json:"name"`
	// Collation sets LC_COLLATE and LC_CTYPE when the database is created.
	Collation string `json:"collation,omitempty"`
}

// Secret is a Secret generated once in the cluster.
type Secret struct {
	// Name is appended to the release name to form the Secret's name.
	Name string `json:"name"`
	// Keys are the data keys and how each value is generated.
	Keys map[string]Generator `json:"keys"`
	// TakenUp says when the component reads the values: [TakenUpStart] or
	// [TakenUpFirstStart] (the default).
	TakenUp TakenUp `json:"takenUp,omitempty"`
}

// TakenUp says when a component takes up the values of one of its generated Secrets,
// and so whether a new value (the Secret deleted by hand and regenerated, or rotated)
// can roll out without locking anything out.
type TakenUp string

const (
	// TakenUpFirstStart: the values are read only when the component first
	// initialises its data (a bootstrap admin password, a key that encrypts stored
	// data); afterwards the component keeps its own copy. A new value would not reach
	// it, so platzwart never replaces a lost Secret of an installed component
	// (secrets.LostError) and rotates one only with --force. The default.
	TakenUpFirstStart TakenUp = "firstStart"
	// TakenUpStart: the component applies the values every time its pods start (the
	// chart passes them again, and sets them where the component stores them), so a new
	// value rolls out with the restart platzwart causes.
	TakenUpStart TakenUp = "start"
)

// Generator says how a secret value is generated.
type Generator struct {
	// Length of the value in characters (default 32); for format rsa the key size in
	// bits (default 2048).
	Length int `json:"length,omitempty"`
	// Format is alphanumeric (default), hex, or a private key as PKCS#8 PEM: rsa or
	// ecdsa-p256.
	Format string `json:"format,omitempty"`
}

// Profile picks a component per capability and sets routing, sizing and value overlays.
type Profile struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   Meta        `json:"metadata"`
	Spec       ProfileSpec `json:"spec"`

	// File is where the profile was read from (not part of the document).
	File string `json:"-"`
}

// ProfileSpec is the content of a profile.
type ProfileSpec struct {
	// Description says what the profile is for.
	Description string `json:"description,omitempty"`
	// Extends names the profile this one builds on.
	Extends string `json:"extends,omitempty"`
	// Components maps a capability to its default component ("none" switches it off).
	Components map[string]string `json:"components,omitempty"`
	// Routing is the default routing and TLS.
	Routing *v1alpha1.Routing `json:"routing,omitempty"`
	// Settings are free-form values every component template sees as .Settings.
	Settings map[string]apiextensionsv1.JSON `json:"settings,omitempty"`
	// Values are per-component value overlays.
	Values map[string]apiextensionsv1.JSON `json:"values,omitempty"`
	// Backups says where the backups before risky upgrade steps go.
	Backups *Backups `json:"backups,omitempty"`
}

// Backups is the target of the backups taken before risky upgrade steps: a
// PersistentVolumeClaim of the workplace (<workplace>-backups), created when the
// first backup is taken and never deleted by platzwart, or, with S3, a bucket of
// S3-compatible storage.
type Backups struct {
	// Size is the claim's requested storage (default 10Gi). A claim that exists
	// keeps its size: grow it by hand where the storage class allows it. With S3 it
	// sizes the backup Job's scratch volume instead (an ephemeral volume that lives
	// as long as the Job's pod).
	Size string `json:"size,omitempty"`
	// StorageClassName of the claim, or of the scratch volume with S3 ("": the
	// cluster's default StorageClass).
	StorageClassName string `json:"storageClassName,omitempty"`
	// S3, when set, sends each dump to an S3-compatible bucket instead of the claim.
	S3 *S3Backups `json:"s3,omitempty"`
}

// S3Backups is a bucket of S3-compatible storage the backups go to, each dump an
// object <prefix>/<file>.
type S3Backups struct {
	// Endpoint is the S3 API's base URL (https://host[:port], no path).
	Endpoint string `json:"endpoint"`
	// Bucket must exist: platzwart never creates one.
	Bucket string `json:"bucket"`
	// Region to sign requests for ("": the client's default, us-east-1).
	Region string `json:"region,omitempty"`
	// Prefix of the objects' keys (default <namespace>/<workplace>), without a
	// leading or trailing slash.
	Prefix string `json:"prefix,omitempty"`
	// CredentialsSecret names a Secret in the workplace's namespace, made by the
	// operator, with the keys accessKeyID and secretAccessKey. Only its name is in Git.
	CredentialsSecret string `json:"credentialsSecret"`
	// PathStyle addresses the bucket in the URL's path (https://host/bucket/key, the
	// default, as most self-hosted S3 servers want) instead of the host name
	// (https://bucket.host/key: set false for AWS).
	PathStyle *bool `json:"pathStyle,omitempty"`
	// CASecret is a Secret key with the PEM CA certificate the endpoint's certificate
	// is signed by, for an endpoint with a private CA: the client then trusts only
	// that CA. Unset: the workplace's CA (routing.tls.caSecret) when the endpoint is
	// a host of the workplace's domain, else the image's public CAs.
	CASecret *v1alpha1.SecretKeyRef `json:"caSecret,omitempty"`

	// Registry is the workplace's image registry mirror (spec.images.registry), set by
	// the plan for the transfer image; not part of the document.
	Registry string `json:"-"`
}
