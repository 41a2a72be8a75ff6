// Package sbom writes a CycloneDX software bill of materials for Go binaries: every
// module compiled into them (read from the binaries' build information, not from
// go.mod), each with its version, package URL, licence (classified with licensecheck
// from the licence files in the module cache) and the SHA-256 of its module zip.
// Output is deterministic: the same binaries and input give the same bytes.
package sbom

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/module"
)

// Input is what a document is made of.
type Input struct {
	// Subject is metadata.component: what the document is about (an image).
	Subject Component
	// Binaries are Go executables built from one main module, one per platform;
	// the document lists the union of their modules.
	Binaries []string
	// MainVersion is the main module's version (a build from a work tree records
	// "(devel)"), MainDir its source directory, where its licence is read.
	MainVersion, MainDir string
	// ModCache is the module cache (go env GOMODCACHE) the binaries were built from.
	ModCache string
	// GoRoot is the toolchain's GOROOT, for the standard library's licence.
	GoRoot string
	// Timestamp is metadata.timestamp; pass the commit time for reproducible output.
	Timestamp time.Time
	// Tool names the program that writes the document.
	Tool Component
}

// Module is a Go module compiled into the binaries, as it was built: where a
// replace directive applied, Path and Version are the replacement's.
type Module struct {
	Path, Version string
	// Replaces is the module path that was replaced, if any.
	Replaces string
	// Sum is the go.sum hash (h1:…) recorded in the binary.
	Sum     string
	Licence Licence
}

// Result is a document and the modules it lists.
type Result struct {
	BOM BOM
	// Main is the main module, Modules every dependency compiled in, sorted by path.
	Main    Module
	Modules []Module
}

// Unclassified returns the modules, main module included, whose licence is
// NOASSERTION in the document.
func (r Result) Unclassified() []Module {
	var out []Module
	for _, m := range append([]Module{r.Main}, r.Modules...) {
		if !m.Licence.Classified() {
			out = append(out, m)
		}
	}
	return out
}

// Generate reads the binaries' build information and the licence files and
// returns the document.
func Generate(in Input) (Result, error) {
	if len(in.Binaries) == 0 {
		return Result{}, errors.New("sbom: no binaries")
	}
	mainPath, goVersion, deps, err := readBinaries(in.Binaries)
	if err != nil {
		return Result{}, err
	}
	res := Result{Main: Module{Path: mainPath, Version: in.MainVersion}}
	if res.Main.Licence, err = ClassifyDir(in.MainDir); err != nil {
		return Result{}, fmt.Errorf("sbom: main module %s: %w", mainPath, err)
	}
	std, err := ClassifyDir(in.GoRoot)
	if err != nil {
		return Result{}, fmt.Errorf("sbom: standard library: %w", err)
	}

	components := []Component{
		{
			Type: TypeApplication, BOMRef: purl(mainPath, in.MainVersion), Name: mainPath, Version: in.MainVersion,
			PURL: purl(mainPath, in.MainVersion), Licenses: res.Main.Licence.choices(),
		},
		{
			Type: TypeLibrary, BOMRef: purl("std", goVersion), Name: "std", Version: goVersion,
			Description: "the Go standard library and runtime", PURL: purl("std", goVersion), Licenses: std.choices(),
		},
	}
	for _, d := range deps {
		m := Module{Path: d.Path, Version: d.Version, Sum: d.Sum}
		if d.Replace != nil {
			m = Module{Path: d.Replace.Path, Version: d.Replace.Version, Sum: d.Replace.Sum, Replaces: d.Path}
		}
		if m.Version == "" {
			return Result{}, fmt.Errorf("sbom: module %s: replaced by a directory (%s); only versioned modules can be listed", d.Path, m.Path)
		}
		dir, zip, err := cachePaths(in.ModCache, m.Path, m.Version)
		if err != nil {
			return Result{}, fmt.Errorf("sbom: module %s@%s: %w", m.Path, m.Version, err)
		}
		if m.Licence, err = ClassifyDir(dir); err != nil {
			return Result{}, fmt.Errorf("sbom: module %s@%s: %w (is it in the module cache? go mod download)", m.Path, m.Version, err)
		}
		c := Component{
			Type: TypeLibrary, BOMRef: purl(m.Path, m.Version), Name: m.Path, Version: m.Version,
			PURL: purl(m.Path, m.Version), Licenses: m.Licence.choices(),
		}
		if sum, err := fileSHA256(zip); err == nil {
			c.Hashes = []Hash{{Alg: "SHA-256", Content: sum}}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return Result{}, fmt.Errorf("sbom: module %s@%s: %w", m.Path, m.Version, err)
		}
		if m.Replaces != "" {
			c.Properties = append(c.Properties, Property{Name: "platzwart:gomod:replaces", Value: m.Replaces})
		}
		if !m.Licence.Classified() {
			c.Properties = append(c.Properties, Property{Name: "platzwart:licence:unclassified", Value: m.Licence.Reason})
		}
		res.Modules = append(res.Modules, m)
		components = append(components, c)
	}

	res.BOM = BOM{
		BOMFormat:    "CycloneDX",
		SpecVersion:  SpecVersion,
		SerialNumber: serialNumber(in.Subject, components),
		Version:      1,
		Metadata: Metadata{
			Timestamp: in.Timestamp.UTC().Format(time.RFC3339),
			Component: in.Subject,
		},
		Components: components,
	}
	if in.Tool.Name != "" {
		res.BOM.Metadata.Tools = &Tools{Components: []Component{in.Tool}}
	}
	return res, nil
}

// readBinaries returns the main module path, the Go version and the union of the
// dependencies of the binaries, sorted by path.
func readBinaries(paths []string) (string, string, []*debug.Module, error) {
	var mainPath, goVersion string
	byPath := map[string]*debug.Module{}
	for _, p := range paths {
		info, err := buildinfo.ReadFile(p)
		if err != nil {
			return "", "", nil, fmt.Errorf("sbom: build information of %s: %w", p, err)
		}
		if mainPath == "" {
			mainPath, goVersion = info.Main.Path, info.GoVersion
		}
		if info.Main.Path != mainPath || info.GoVersion != goVersion {
			return "", "", nil, fmt.Errorf("sbom: %s is %s built with %s, not %s built with %s", p, info.Main.Path, info.GoVersion, mainPath, goVersion)
		}
		for _, d := range info.Deps {
			if seen, ok := byPath[d.Path]; ok {
				if seen.Version != d.Version || (seen.Replace == nil) != (d.Replace == nil) {
					return "", "", nil, fmt.Errorf("sbom: %s: module %s at two versions (%s, %s)", p, d.Path, seen.Version, d.Version)
				}
				continue
			}
			byPath[d.Path] = d
		}
	}
	deps := make([]*debug.Module, 0, len(byPath))
	for _, d := range byPath {
		deps = append(deps, d)
	}
	slices.SortFunc(deps, func(a, b *debug.Module) int { return strings.Compare(a.Path, b.Path) })
	return mainPath, goVersion, deps, nil
}

// cachePaths returns a module's directory and its zip in the module cache.
func cachePaths(modCache, path, version string) (dir, zip string, err error) {
	ep, err := module.EscapePath(path)
	if err != nil {
		return "", "", err
	}
	ev, err := module.EscapeVersion(version)
	if err != nil {
		return "", "", err
	}
	return filepath.Join(modCache, ep+"@"+ev), filepath.Join(modCache, "cache", "download", ep, "@v", ev+".zip"), nil
}

// purl is a Go module's package URL (pkg:golang/<path>@<version>).
func purl(path, version string) string {
	return "pkg:golang/" + path + "@" + version
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// serialNumber is a name-based (version 5) UUID of the subject and the components,
// so that the same input yields the same document.
func serialNumber(subject Component, components []Component) string {
	var name bytes.Buffer
	fmt.Fprintf(&name, "%s %s %s\n", subject.Name, subject.Version, subject.PURL)
	for _, c := range components {
		fmt.Fprintf(&name, "%s\n", c.PURL)
	}
	// RFC 9562 namespace ID for URLs; any fixed namespace would do.
	namespace := []byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	h := sha1.New()
	h.Write(namespace)
	h.Write(name.Bytes())
	u := h.Sum(nil)[:16]
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 9562 variant
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// WriteJSON writes the document as indented JSON followed by a newline.
func (b BOM) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return fmt.Errorf("sbom: %w", err)
	}
	return nil
}
