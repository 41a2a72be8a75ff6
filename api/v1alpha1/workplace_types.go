package v1alpha1

import (
	"github.com/fluxcd/pkg/apis/kustomize"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkplaceKind is the kind of the Workplace document and resource.
const WorkplaceKind = "Workplace"

// None switches a capability off when used as its component in spec.components.
const None = "none"

// DataPolicy says what happens to the data of a component that is removed.
// +kubebuilder:validation:Enum=Retain;Delete
type DataPolicy string

const (
	// DataPolicyRetain keeps PersistentVolumeClaims and databases of removed components.
	DataPolicyRetain DataPolicy = "Retain"
	// DataPolicyDelete deletes them together with the release.
	DataPolicyDelete DataPolicy = "Delete"
)

// RoutingMode selects how public hostnames reach the components.
// +kubebuilder:validation:Enum=Ingress;Gateway;None
type RoutingMode string

const (
	// RoutingIngress renders networking.k8s.io/v1 Ingress objects.
	RoutingIngress RoutingMode = "Ingress"
	// RoutingGateway renders Gateway API HTTPRoutes attached to a Gateway.
	RoutingGateway RoutingMode = "Gateway"
	// RoutingNone renders no routing objects; the operator routes traffic.
	RoutingNone RoutingMode = "None"
)

// TLSMode selects where the certificates of the public hostnames come from.
// +kubebuilder:validation:Enum=SelfSigned;Issuer;Secret;None
type TLSMode string

const (
	// TLSSelfSigned makes platzwart generate a self-signed wildcard certificate once.
	TLSSelfSigned TLSMode = "SelfSigned"
	// TLSIssuer asks cert-manager for certificates from the named issuer.
	TLSIssuer TLSMode = "Issuer"
	// TLSSecret uses a wildcard certificate Secret the operator provides.
	TLSSecret TLSMode = "Secret"
	// TLSNone serves no TLS from the cluster (terminated in front of it).
	TLSNone TLSMode = "None"
)

// Workplace is a self-hosted workplace: a set of components, one per capability,
// installed as Helm releases and wired together.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wp
// +kubebuilder:printcolumn:name="Domain",type=string,JSONPath=`.spec.domain`
// +kubebuilder:printcolumn:name="Profile",type=string,JSONPath=`.spec.profile`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 24",message="metadata.name: at most 24 characters (release names are <workplace>-<component>)"
type Workplace struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   WorkplaceSpec   `json:"spec,omitempty"`
	Status WorkplaceStatus `json:"status,omitempty"`
}

// WorkplaceSpec is the desired state of a Workplace.
type WorkplaceSpec struct {
	// Domain is the DNS domain every public hostname of the workplace lives under.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$`
	Domain string `json:"domain"`

	// Profile names the profile that picks the default component of each capability,
	// routing, TLS and sizing (for example minikube or standard).
	// +kubebuilder:validation:MinLength=1
	Profile string `json:"profile"`

	// Components maps a capability (identity, chat, video, files, office, postgres, redis)
	// to the component that fills it, overriding the profile; "none" switches it off.
	// +optional
	Components map[string]string `json:"components,omitempty"`

	// Values maps a component name to Helm values merged over the component's
	// mapping and the profile's overlay.
	// +optional
	Values map[string]apiextensionsv1.JSON `json:"values,omitempty"`

	// Patches maps a component name to kustomize patches applied to its rendered
	// manifests (post-rendering).
	// +optional
	Patches map[string][]kustomize.Patch `json:"patches,omitempty"`

	// Versions pins a component (by name, like values and patches: a version belongs
	// to one product) to one of the versions its catalog entry lists; a component
	// without a pin follows the newest. platzwart reaches the version through the
	// component's upgrade path, stepping stones included, and never downgrades.
	// +kubebuilder:validation:MaxProperties=64
	// +optional
	Versions map[string]ComponentVersion `json:"versions,omitempty"`

	// DataPolicy says whether the volumes and databases of a removed component are
	// kept (Retain, the default) or deleted (Delete).
	// +kubebuilder:default=Retain
	// +optional
	DataPolicy DataPolicy `json:"dataPolicy,omitempty"`

	// Routing overrides the profile's routing and TLS settings.
	// +optional
	Routing *Routing `json:"routing,omitempty"`

	// Images overrides where images are pulled from (a registry mirror).
	// +optional
	Images *Images `json:"images,omitempty"`

	// Suspend stops reconciliation of this workplace while true.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// StrictCredentials refuses the workplace when its values or its profiles' values
	// carry what looks like a credential literal (a password, token or key in Git);
	// otherwise `platzwart validate` only warns. Use Secret references instead.
	// +optional
	StrictCredentials bool `json:"strictCredentials,omitempty"`
	// Retries bounds how many failed reconciles in a row of one generation and source
	// revision the controller retries, with exponential backoff, before the Workplace
	// is Stalled (default 5); a new revision or spec change starts again.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Retries *int32 `json:"retries,omitempty"`

	// KubeConfig installs the workplace in another cluster than the controller's,
	// through a kubeconfig held in a Secret (like Flux's HelmRelease
	// spec.kubeConfig). Without it the workplace goes to the controller's cluster.
	// +optional
	KubeConfig *KubeConfigReference `json:"kubeConfig,omitempty"`
}

// KubeConfigReference points at the kubeconfig of the cluster a workplace is
// installed in.
type KubeConfigReference struct {
	// SecretRef names the Secret, in the Workplace's namespace on the controller's
	// cluster, and its key that hold the kubeconfig. The kubeconfig must be
	// self-contained: certificates and token inline; exec and auth-provider
	// credential plugins, file references (certificate-authority,
	// client-certificate, client-key, tokenFile) and insecure-skip-tls-verify are
	// refused, as they would run programs or read files on the controller.
	SecretRef KubeConfigSecretRef `json:"secretRef"`
}

// KubeConfigSecretRef names a Secret holding a kubeconfig and its key.
type KubeConfigSecretRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// Key of the Secret holding the kubeconfig; when empty, "value", else
	// "value.yaml" (Flux's keys).
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="a Secret key cannot be . or .."
	// +optional
	Key string `json:"key,omitempty"`
}

// ComponentVersion is a version of a component as its catalog entry lists it
// (spec.versions[].version): numbers and dots such as 34.0.4, v1.162.0 or 18.6, an
// optional -pre-release.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^v?[0-9]+(\.[0-9]+){0,2}(-[0-9A-Za-z]+([.-][0-9A-Za-z]+)*)?$`
type ComponentVersion string

// Routing says how public hostnames are routed and how TLS is provided.
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Gateway' || (has(self.gateway) && size(self.gateway.name) > 0)",message="gateway.name: required when mode is Gateway"
type Routing struct {
	// Mode is Ingress, Gateway or None.
	// +optional
	Mode RoutingMode `json:"mode,omitempty"`

	// IngressClassName is the IngressClass of rendered Ingresses (mode Ingress).
	// +optional
	IngressClassName string `json:"ingressClassName,omitempty"`

	// Gateway is the parent of rendered HTTPRoutes (mode Gateway).
	// +optional
	Gateway *GatewayRef `json:"gateway,omitempty"`

	// ControllerNamespace is the namespace of the ingress or gateway controller's
	// pods, admitted by the components' NetworkPolicies.
	// +optional
	ControllerNamespace string `json:"controllerNamespace,omitempty"`

	// TLS says where certificates come from.
	// +optional
	TLS *TLS `json:"tls,omitempty"`
}

// GatewayRef names a Gateway API Gateway and optionally one of its listeners.
type GatewayRef struct {
	// Name of the Gateway.
	Name string `json:"name"`
	// Namespace of the Gateway.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// SectionName is the listener to attach to.
	// +optional
	SectionName string `json:"sectionName,omitempty"`
}

// TLS says where the certificates of public hostnames come from.
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Issuer' || (has(self.issuer) && size(self.issuer.name) > 0)",message="issuer.name: required when mode is Issuer"
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Secret' || (has(self.secretName) && size(self.secretName) > 0)",message="secretName: required when mode is Secret"
type TLS struct {
	// Mode is SelfSigned, Issuer, Secret or None.
	// +optional
	Mode TLSMode `json:"mode,omitempty"`
	// Issuer is the cert-manager issuer (mode Issuer).
	// +optional
	Issuer *IssuerRef `json:"issuer,omitempty"`
	// SecretName is the wildcard certificate Secret (mode Secret).
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// CASecret names the PEM certificate of the private CA that signs the
	// certificates (modes Issuer and Secret), which every HTTPS client inside the
	// workplace must trust. Empty means a public CA (the images' system stores).
	// Mode SelfSigned always uses ca.crt of the generated Secret <workplace>-tls.
	// +optional
	CASecret *SecretKeyRef `json:"caSecret,omitempty"`
}

// SecretKeyRef names one key of a Secret in the workplace's namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	Name string `json:"name"`
	// Key in the Secret (default ca.crt).
	// +optional
	Key string `json:"key,omitempty"`
}

// IssuerRef names a cert-manager Issuer or ClusterIssuer.
type IssuerRef struct {
	// Kind is ClusterIssuer (default) or Issuer.
	// +kubebuilder:validation:Enum=ClusterIssuer;Issuer
	// +optional
	Kind string `json:"kind,omitempty"`
	// Name of the issuer.
	Name string `json:"name"`
}

// Images says where container images are pulled from.
type Images struct {
	// Registry replaces the registry of every image, for a mirror
	// (for example registry.example.org/mirror).
	// +kubebuilder:validation:Pattern=`^[^:/]+(:[0-9]+)?(/[^/]+)*$`
	// +optional
	Registry string `json:"registry,omitempty"`
}

// WorkplaceStatus is the observed state of a Workplace.
type WorkplaceStatus struct {
	// ObservedGeneration is the last generation reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions hold Ready, Reconciling and Stalled (kstatus-compatible), and
	// SourceReady for Workplaces from Git.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Failures counts failed reconciles in a row of the observed generation and the
	// last attempted revision (see spec.retries).
	// +optional
	Failures int32 `json:"failures,omitempty"`

	// LastAppliedRevision is the source revision last applied successfully.
	// +optional
	LastAppliedRevision string `json:"lastAppliedRevision,omitempty"`

	// LastAttemptedRevision is the source revision last attempted.
	// +optional
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`

	// Components is the state of each component's release.
	// +optional
	Components []ComponentStatus `json:"components,omitempty"`

	// KeptVolumes lists PersistentVolumeClaims kept from removed components.
	// +optional
	KeptVolumes []KeptVolume `json:"keptVolumes,omitempty"`

	// Backups are the newest database backups taken before risky upgrade steps,
	// oldest first (at most 20).
	// +optional
	// +kubebuilder:validation:MaxItems=20
	Backups []Backup `json:"backups,omitempty"`

	// History holds the latest deployments of new revisions, oldest first (bounded).
	// +optional
	History []Deployment `json:"history,omitempty"`

	// Delivery summarises the history as delivery metrics.
	// +optional
	Delivery *DeliveryMetrics `json:"delivery,omitempty"`
}

// Deployment is one attempt to bring a new source revision to Ready.
type Deployment struct {
	// Revision is the source revision deployed.
	Revision string `json:"revision"`
	// CommitTime is when the revision was committed.
	// +optional
	CommitTime *metav1.Time `json:"commitTime,omitempty"`
	// Started is when platzwart began applying it.
	Started metav1.Time `json:"started"`
	// Finished is when it became Ready or failed.
	Finished metav1.Time `json:"finished"`
	// Succeeded is true when the workplace became Ready with this revision.
	Succeeded bool `json:"succeeded"`
	// Attempts counts consecutive reconciles of this revision that ended this way.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// Message explains a failure.
	// +optional
	Message string `json:"message,omitempty"`
}

// DeliveryMetrics are the four delivery metrics of a workplace over its history.
type DeliveryMetrics struct {
	// DeploymentsPerDay is the number of successful deployments per day over the
	// history's time span.
	DeploymentsPerDay string `json:"deploymentsPerDay"`
	// LeadTime is the median time from commit to Ready of successful deployments.
	// +optional
	LeadTime *metav1.Duration `json:"leadTime,omitempty"`
	// ChangeFailureRate is failed deployments divided by all, as a decimal string.
	ChangeFailureRate string `json:"changeFailureRate"`
	// TimeToRestore is the median time from a failed deployment to the next
	// successful one.
	// +optional
	TimeToRestore *metav1.Duration `json:"timeToRestore,omitempty"`
}

// ComponentStatus is the state of one component's release.
type ComponentStatus struct {
	// Component is the component name.
	Component string `json:"component"`
	// Capability is the capability it fills.
	Capability string `json:"capability"`
	// Release is the Helm release name ("" for wiring-only components).
	// +optional
	Release string `json:"release,omitempty"`
	// Chart is the chart name and version.
	// +optional
	Chart string `json:"chart,omitempty"`
	// Revision is the Helm release revision.
	// +optional
	Revision int `json:"revision,omitempty"`
	// Version is the component version the release runs (the component's
	// spec.versions), when the component lists versions.
	// +optional
	Version string `json:"version,omitempty"`
	// Digest is the release digest last applied.
	// +optional
	Digest string `json:"digest,omitempty"`
	// Ready says whether every resource of the release is ready.
	Ready bool `json:"ready"`
	// Message explains the state.
	// +optional
	Message string `json:"message,omitempty"`
	// LastTransitionTime is when Ready last changed.
	// +optional
	LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`
}

// KeptVolume is a PersistentVolumeClaim kept after its component was removed.
type KeptVolume struct {
	// Component that owned the claim.
	Component string `json:"component"`
	// Name of the PersistentVolumeClaim.
	Name string `json:"name"`
	// Since is when the component was removed.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
}

// Backup is one database dumped before a risky upgrade step (the PostgreSQL chart's
// backup.sh: a custom-format dump, verified by reading it back).
type Backup struct {
	// Component whose upgrade step it preceded, and the Version it upgraded to.
	Component string `json:"component"`
	Version   string `json:"version"`
	// Database that was dumped.
	Database string `json:"database"`
	// Claim is the PersistentVolumeClaim holding the dump ("" when it went to S3);
	// File is the dump's name.
	// +optional
	Claim string `json:"claim,omitempty"`
	File  string `json:"file"`
	// Location is where the dump is kept: the claim, or an object in S3-compatible
	// storage.
	// +optional
	Location *BackupLocation `json:"location,omitempty"`
	// Job that ran the backup.
	Job string `json:"job"`
	// Bytes and SHA256 of the dump, when the Job's pod reported them.
	// +optional
	Bytes int64 `json:"bytes,omitempty"`
	// +optional
	SHA256 string `json:"sha256,omitempty"`
	// Finished is when the backup completed.
	// +optional
	Finished *metav1.Time `json:"finished,omitempty"`
}

// BackupLocation is where a dump is kept: a file on a PersistentVolumeClaim of the
// workplace, or an object in S3-compatible storage (the profile's spec.backups.s3).
type BackupLocation struct {
	// Claim is the PersistentVolumeClaim holding the dump file.
	// +optional
	Claim string `json:"claim,omitempty"`
	// S3 is the object holding the dump.
	// +optional
	S3 *S3Object `json:"s3,omitempty"`
}

// String is "claim <name>" or "s3://<bucket>/<key> at <endpoint>".
func (l BackupLocation) String() string {
	if l.S3 != nil {
		return l.S3.String() + " at " + l.S3.Endpoint
	}
	return "claim " + l.Claim
}

// S3Object is an object in a bucket of S3-compatible storage.
type S3Object struct {
	// Endpoint is the S3 API's URL.
	Endpoint string `json:"endpoint"`
	// Bucket and Key name the object.
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
}

// String is the object's s3:// URL.
func (o S3Object) String() string { return "s3://" + o.Bucket + "/" + o.Key }

// WorkplaceList is a list of Workplaces.
//
// +kubebuilder:object:root=true
type WorkplaceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Workplace `json:"items"`
}
