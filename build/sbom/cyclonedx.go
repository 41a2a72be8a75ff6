package sbom

// The subset of CycloneDX 1.6 (https://cyclonedx.org/docs/1.6/json/) this package
// writes. Field order is the order of the JSON output; empty fields are left out.

// SpecVersion is the CycloneDX version of the documents written here.
const SpecVersion = "1.6"

// BOM is a CycloneDX document.
type BOM struct {
	BOMFormat    string      `json:"bomFormat"`
	SpecVersion  string      `json:"specVersion"`
	SerialNumber string      `json:"serialNumber"`
	Version      int         `json:"version"`
	Metadata     Metadata    `json:"metadata"`
	Components   []Component `json:"components"`
}

// Metadata says what the document describes and when.
type Metadata struct {
	Timestamp string    `json:"timestamp"`
	Tools     *Tools    `json:"tools,omitempty"`
	Component Component `json:"component"`
}

// Tools names what wrote the document.
type Tools struct {
	Components []Component `json:"components"`
}

// Component types used here.
const (
	TypeApplication = "application"
	TypeLibrary     = "library"
	TypeContainer   = "container"
)

// Component is one piece of software.
type Component struct {
	Type        string          `json:"type"`
	BOMRef      string          `json:"bom-ref,omitempty"`
	Name        string          `json:"name"`
	Version     string          `json:"version,omitempty"`
	Description string          `json:"description,omitempty"`
	PURL        string          `json:"purl,omitempty"`
	Licenses    []LicenseChoice `json:"licenses,omitempty"`
	Hashes      []Hash          `json:"hashes,omitempty"`
	Properties  []Property      `json:"properties,omitempty"`
}

// LicenseChoice is one licence of a component.
type LicenseChoice struct {
	License License `json:"license"`
}

// License is an SPDX licence id or, for what SPDX does not list, a name.
type License struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Hash is a digest of a component's distribution.
type Hash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

// Property is a name/value pair.
type Property struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}
