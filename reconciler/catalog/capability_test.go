package catalog_test

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/catalog"
)

// TestBuiltinCapabilities: the built-in catalog declares the application
// capabilities as data next to the three grant capabilities of the code, and every
// built-in component fills one of them.
func TestBuiltinCapabilities(t *testing.T) {
	c, err := catalog.Load(catalog.Layer{FS: platzwart.Builtin(), Label: "builtin"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"chat", "files", "identity", "mail", "office", "portal", "postgres", "redis", "video"}
	if got := c.CapabilityNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("capabilities %v, want %v", got, want)
	}
	for name, doc := range c.Capabilities {
		if got, want := doc.File, "builtin/capabilities/"+name+".yaml"; got != want {
			t.Errorf("capability %s read from %s, want %s", name, got, want)
		}
	}
	if mail, _ := c.Capability("mail"); !reflect.DeepEqual(mail.Exports, []string{"url", "host", "domain", "smtpHost", "smtpPort"}) {
		t.Errorf("mail exports %v", mail.Exports)
	}
	for name, comp := range c.Components {
		if _, ok := c.Capability(comp.Spec.Capability); !ok {
			t.Errorf("component %s fills unknown capability %q", name, comp.Spec.Capability)
		}
	}
}

// filesCapability declares files in a catalog layer loaded on its own.
const filesCapability = `apiVersion: platzwart.io/v1alpha1
kind: Capability
metadata: {name: files}
spec:
  description: file sync and share
  exports: [url]
`

const wikiCapability = `apiVersion: platzwart.io/v1alpha1
kind: Capability
metadata: {name: wiki}
spec:
  description: a wiki
  exports: [url]
`

// TestRepositoryCapability: a repository layer declares a capability of its own,
// and its components may fill and consume it; an unknown capability's error lists it.
func TestRepositoryCapability(t *testing.T) {
	repo := fstest.MapFS{
		"capabilities/wiki.yaml": {Data: []byte(wikiCapability)},
		"components/x/component.yaml": {Data: []byte(`apiVersion: platzwart.io/v1alpha1
kind: Component
metadata: {name: x}
spec:
  capability: files
  licence: MIT
  url: https://example.org
  optional: [wiki]
`)},
		"components/ywiki/component.yaml": {Data: []byte(`apiVersion: platzwart.io/v1alpha1
kind: Component
metadata: {name: ywiki}
spec:
  capability: wiki
  licence: MIT
  url: https://example.org
`)},
	}
	c, err := catalog.Load(catalog.Layer{FS: platzwart.Builtin(), Label: "builtin"}, catalog.Layer{FS: repo, Label: "repo"})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Capability("wiki"); !ok || !reflect.DeepEqual(got.Exports, []string{"url"}) {
		t.Errorf("wiki = %+v, %v", got, ok)
	}
	if err := c.CheckSelection("wiki", "ywiki"); err != nil {
		t.Errorf("selecting ywiki for wiki: %v", err)
	}

	repo["components/z/component.yaml"] = &fstest.MapFile{Data: []byte(`apiVersion: platzwart.io/v1alpha1
kind: Component
metadata: {name: z}
spec:
  capability: blog
  licence: MIT
  url: https://example.org
`)}
	_, err = catalog.Load(catalog.Layer{FS: platzwart.Builtin(), Label: "builtin"}, catalog.Layer{FS: repo, Label: "repo"})
	want := `repo/components/z/component.yaml: Component "z": spec.capability: unknown capability "blog" (known: chat, files, identity, mail, office, portal, postgres, redis, video, wiki)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v\nwant it to contain %q", err, want)
	}
}

// TestCapabilitiesRefused: every mistake in a capability document names the file and
// the field, and the grant capabilities cannot be redeclared.
func TestCapabilitiesRefused(t *testing.T) {
	cases := []struct {
		name, file, doc, want string
	}{
		{"grant capability", "identity.yaml", strings.ReplaceAll(wikiCapability, "wiki", "identity"),
			`repo/capabilities/identity.yaml: Capability "identity": metadata.name: "identity" is built in`},
		{"name and file differ", "blog.yaml", wikiCapability,
			`repo/capabilities/blog.yaml: Capability "wiki": metadata.name: must equal the file name "blog"`},
		{"bad name", "Wiki.yaml", strings.ReplaceAll(wikiCapability, "name: wiki", "name: Wiki"),
			`metadata.name: "Wiki" must be lower-case letters and digits`},
		{"no exports", "wiki.yaml", strings.ReplaceAll(wikiCapability, "  exports: [url]\n", ""),
			`repo/capabilities/wiki.yaml: Capability "wiki": spec.exports: at least one key is required`},
		{"bad key", "wiki.yaml", strings.ReplaceAll(wikiCapability, "[url]", "[url, base-url]"),
			`spec.exports[1]: "base-url" is not a template key`},
		{"key twice", "wiki.yaml", strings.ReplaceAll(wikiCapability, "[url]", "[url, url]"),
			`spec.exports[1]: "url" is listed twice`},
		{"no description", "wiki.yaml", strings.ReplaceAll(wikiCapability, "  description: a wiki\n", ""),
			`spec.description: required`},
		{"unknown field", "wiki.yaml", wikiCapability + "  consumes: [identity]\n",
			`spec.consumes: unknown field`},
		{"wrong kind", "wiki.yaml", strings.ReplaceAll(wikiCapability, "kind: Capability", "kind: Component"),
			`repo/capabilities/wiki.yaml: Component "wiki": kind: expected "Capability", got "Component"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo := fstest.MapFS{"capabilities/" + tc.file: {Data: []byte(tc.doc)}}
			_, err := catalog.Load(catalog.Layer{FS: platzwart.Builtin(), Label: "builtin"}, catalog.Layer{FS: repo, Label: "repo"})
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
