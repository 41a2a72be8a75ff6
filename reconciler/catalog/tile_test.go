package catalog_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/catalog"
)

const svgIcon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="8" height="8"/></svg>`

// tiledComponent is a component x of capability files with one host, files, and
// the given spec.tile block (indented under spec), plus extra files in its folder.
func tiledComponent(tile string, files map[string]string) fstest.MapFS {
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Component
metadata: {name: x}
spec:
  capability: files
  licence: MIT
  url: https://example.org
  hosts:
    - {name: files, subdomain: files}
` + tile
	fsys := fstest.MapFS{
		"capabilities/files.yaml":     &fstest.MapFile{Data: []byte(filesCapability)},
		"components/x/component.yaml": &fstest.MapFile{Data: []byte(doc)},
	}
	for name, content := range files {
		fsys["components/x/"+name] = &fstest.MapFile{Data: []byte(content)}
	}
	return fsys
}

// TestTileIcons: an icon file in the component's folder and a data: URI both end up
// as the data: URI the portal shows.
func TestTileIcons(t *testing.T) {
	c, err := catalog.Load(catalog.Layer{FS: tiledComponent("  tile: {name: Files, host: files, icon: icon.svg}\n",
		map[string]string{"icon.svg": svgIcon}), Label: "repo"})
	if err != nil {
		t.Fatal(err)
	}
	want := "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString([]byte(svgIcon))
	if got := c.Components["x"].Spec.Tile.IconURI; got != want {
		t.Errorf("IconURI = %q, want %q", got, want)
	}
	c, err = catalog.Load(catalog.Layer{FS: tiledComponent("  tile: {name: Files, host: files, icon: \""+want+"\"}\n", nil), Label: "repo"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Components["x"].Spec.Tile.IconURI; got != want {
		t.Errorf("IconURI of a data: URI = %q, want it unchanged", got)
	}
}

// TestTilesRefused: every mistake in a tile names the file and the field.
func TestTilesRefused(t *testing.T) {
	const prefix = `repo/components/x/component.yaml: Component "x": `
	big := "<svg>" + strings.Repeat(" ", catalog.MaxIconSize) + "</svg>"
	cases := []struct {
		name, tile string
		files      map[string]string
		want       string
	}{
		{"missing name", "  tile: {host: files}\n", nil, prefix + "spec.tile.name: required"},
		{"bad host key", "  tile: {name: Files, host: web}\n", nil, prefix + `spec.tile.host: "web" is not one of spec.hosts (known: files)`},
		{"relative path", "  tile: {name: Files, host: files, path: apps}\n", nil, prefix + `spec.tile.path: "apps" must start with /`},
		{"bad path template", "  tile: {name: Files, host: files, path: \"/{{ .Workplace.Name \"}\n", nil, prefix + "spec.tile.path: template:"},
		{"missing icon file", "  tile: {name: Files, host: files, icon: icon.svg}\n", nil, prefix + `spec.tile.icon: "icon.svg": open`},
		{"icon outside the folder", "  tile: {name: Files, host: files, icon: ../y/icon.svg}\n", nil, prefix + `spec.tile.icon: "../y/icon.svg": a file name in the component's folder`},
		{"icon of another type", "  tile: {name: Files, host: files, icon: icon.gif}\n", map[string]string{"icon.gif": "GIF89a"}, prefix + `spec.tile.icon: "icon.gif": the icon must be an .svg or .png file`},
		{"not an SVG", "  tile: {name: Files, host: files, icon: icon.svg}\n", map[string]string{"icon.svg": "<html><body/></html>"}, prefix + `spec.tile.icon: "icon.svg": not an SVG image: the root element is <html>`},
		{"not a PNG", "  tile: {name: Files, host: files, icon: icon.png}\n", map[string]string{"icon.png": svgIcon}, prefix + `spec.tile.icon: "icon.png": not a PNG image`},
		{"icon too large", "  tile: {name: Files, host: files, icon: icon.svg}\n", map[string]string{"icon.svg": big}, prefix + `spec.tile.icon: "icon.svg": 16395 bytes, more than 16384`},
		{"remote data URI type", "  tile: {name: Files, host: files, icon: \"data:text/html;base64,PGgxPg==\"}\n", nil, prefix + `spec.tile.icon: data: URI of type "text/html"`},
		{"data URI without base64", "  tile: {name: Files, host: files, icon: \"data:image/svg+xml,<svg/>\"}\n", nil, prefix + "spec.tile.icon: a data: URI must be"},
		{"unknown field", "  tile: {name: Files, host: files, url: https://example.org}\n", nil, prefix + "spec.tile.url: unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := catalog.Load(catalog.Layer{FS: tiledComponent(tc.tile, tc.files), Label: "repo"})
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestBuiltinTiles: every built-in app a person opens has a tile with an icon;
// infrastructure, Collabora (opened from the files app) and the portal itself have none.
func TestBuiltinTiles(t *testing.T) {
	c, err := catalog.Load(catalog.Layer{FS: platzwart.Builtin(), Label: "builtin"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"keycloak": "Account", "nextcloud": "Files", "synapse": "Chat", "jitsi": "Video", "bigbluebutton": "Video", "meet": "Video", "stalwart": "Mail", "opencloud": "Files"}
	for name, comp := range c.Components {
		tile := comp.Spec.Tile
		switch {
		case want[name] == "" && tile != nil:
			t.Errorf("component %s has a tile %q; want none", name, tile.Name)
		case want[name] != "" && tile == nil:
			t.Errorf("component %s has no tile", name)
		case tile != nil && (tile.Name != want[name] || !strings.HasPrefix(tile.IconURI, "data:image/svg+xml;base64,")):
			t.Errorf("component %s: tile %q icon %.30q, want %q with an SVG icon", name, tile.Name, tile.IconURI, want[name])
		}
	}
}

// TestTileIconFromALowerLayer: a repository that overrides a built-in component.yaml
// keeps the built-in icon file; its own icon file replaces it.
func TestTileIconFromALowerLayer(t *testing.T) {
	builtin := tiledComponent("  tile: {name: Files, host: files, icon: icon.svg}\n", map[string]string{"icon.svg": svgIcon})
	repo := tiledComponent("  tile: {name: My files, host: files, icon: icon.svg}\n", nil)
	c, err := catalog.Load(catalog.Layer{FS: builtin, Label: "builtin"}, catalog.Layer{FS: repo, Label: "repo"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Components["x"].Spec.Tile; got.Name != "My files" || got.IconURI != "data:image/svg+xml;base64,"+base64.StdEncoding.EncodeToString([]byte(svgIcon)) {
		t.Errorf("tile %q icon %.40q, want the repository's tile with the built-in icon", got.Name, got.IconURI)
	}
	own := `<svg xmlns="http://www.w3.org/2000/svg"/>`
	repo = tiledComponent("  tile: {name: My files, host: files, icon: icon.svg}\n", map[string]string{"icon.svg": own})
	if c, err = catalog.Load(catalog.Layer{FS: builtin, Label: "builtin"}, catalog.Layer{FS: repo, Label: "repo"}); err != nil {
		t.Fatal(err)
	}
	if got := c.Components["x"].Spec.Tile.IconURI; got != "data:image/svg+xml;base64,"+base64.StdEncoding.EncodeToString([]byte(own)) {
		t.Errorf("icon %.60q, want the repository's own", got)
	}
}
