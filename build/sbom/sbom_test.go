package sbom_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/platzwart/platzwart/build/sbom"
)

const mitText = `MIT License

Copyright (c) 2026 Example Authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestClassifyDir(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    map[string]string
		want     string
		reason   string // substring of Reason when not classified
		wantRead []string
	}{
		{"MIT", map[string]string{"LICENSE": mitText, "README.md": "# x"}, "MIT", "", []string{"LICENSE"}},
		{"suffixed name", map[string]string{"LICENSE.txt": mitText}, "MIT", "", []string{"LICENSE.txt"}},
		{"no licence file", map[string]string{"README.md": mitText}, sbom.NoAssertion, "no licence file", nil},
		{"unknown text", map[string]string{"COPYING": "All rights reserved. Ask us before you use this.\n"}, sbom.NoAssertion, "COPYING: 0% of the text", []string{"COPYING"}},
		{"one unknown file makes the whole unknown", map[string]string{"LICENSE": mitText, "LICENSE-EXTRA": "Do what the authors say on Tuesdays.\n"}, sbom.NoAssertion, "LICENSE-EXTRA", []string{"LICENSE-EXTRA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := sbom.ClassifyDir(writeFiles(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			if l.String() != tc.want {
				t.Errorf("licence %q, want %q (reason %q)", l.String(), tc.want, l.Reason)
			}
			if !strings.Contains(l.Reason, tc.reason) {
				t.Errorf("reason %q lacks %q", l.Reason, tc.reason)
			}
			if !slices.Equal(l.Files, tc.wantRead) {
				t.Errorf("files %q, want %q", l.Files, tc.wantRead)
			}
		})
	}
}

// TestGenerate lists the modules of this test binary (it links licensecheck and
// golang.org/x/mod, both BSD-3-Clause) from the real module cache, twice, and
// checks the document against the binary's own build information.
func TestGenerate(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build information in the test binary")
	}
	env := goEnv(t, "GOMODCACHE", "GOROOT")
	in := sbom.Input{
		Subject:     sbom.Component{Type: sbom.TypeContainer, Name: "example.org/test", Version: "v1", PURL: "pkg:oci/test@sha256%3A00"},
		Binaries:    []string{exe},
		MainVersion: "v1.2.3",
		MainDir:     writeFiles(t, map[string]string{"LICENSE": mitText}),
		ModCache:    env[0],
		GoRoot:      env[1],
		Timestamp:   time.Unix(1700000000, 0),
	}
	first, err := sbom.Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	second, err := sbom.Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := first.BOM.WriteJSON(&a); err != nil {
		t.Fatal(err)
	}
	if err := second.BOM.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two documents of the same input differ")
	}

	var doc map[string]any
	if err := json.Unmarshal(a.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["bomFormat"] != "CycloneDX" || doc["specVersion"] != "1.6" {
		t.Errorf("bomFormat %v specVersion %v", doc["bomFormat"], doc["specVersion"])
	}
	if s, _ := doc["serialNumber"].(string); !regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(s) {
		t.Errorf("serialNumber %q is not a version 5 UUID URN", s)
	}
	if ts := doc["metadata"].(map[string]any)["timestamp"]; ts != "2023-11-14T22:13:20Z" {
		t.Errorf("timestamp %v", ts)
	}

	byName := map[string]sbom.Component{}
	for _, c := range first.BOM.Components {
		byName[c.Name] = c
	}
	if main := byName[info.Main.Path]; main.Version != "v1.2.3" || main.Licenses[0].License.ID != "MIT" || main.Type != sbom.TypeApplication {
		t.Errorf("main module component %+v", main)
	}
	if std := byName["std"]; std.Version != info.GoVersion || std.Licenses[0].License.ID != "BSD-3-Clause" {
		t.Errorf("standard library component %+v", std)
	}
	for _, d := range info.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		c, ok := byName[m.Path]
		if !ok {
			t.Errorf("module %s of the binary is not listed", m.Path)
			continue
		}
		if c.Version != m.Version || c.PURL != "pkg:golang/"+m.Path+"@"+m.Version || c.Type != sbom.TypeLibrary {
			t.Errorf("module %s@%s listed as %+v", m.Path, m.Version, c)
		}
		if len(c.Licenses) == 0 {
			t.Errorf("module %s: no licence entry", m.Path)
		}
	}
	if len(first.BOM.Components) != len(info.Deps)+2 {
		t.Errorf("%d components for %d modules + main + std", len(first.BOM.Components), len(info.Deps))
	}
	for _, path := range []string{"github.com/google/licensecheck", "golang.org/x/mod"} {
		c := byName[path]
		if len(c.Licenses) != 1 || c.Licenses[0].License.ID != "BSD-3-Clause" {
			t.Errorf("%s: licences %+v, want BSD-3-Clause", path, c.Licenses)
		}
		if len(c.Hashes) != 1 || c.Hashes[0].Alg != "SHA-256" || len(c.Hashes[0].Content) != 64 {
			t.Errorf("%s: hashes %+v, want the SHA-256 of its module zip", path, c.Hashes)
		}
	}
}

func goEnv(t *testing.T, names ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"env"}, names...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestLicenceFileNames(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"LICENSE-MIT": mitText, "licence.md": mitText, "COPYING.txt": mitText, "LICENSE-2.0": mitText,
		"LICENSE.MIT": mitText, "MIT-LICENSE.txt": mitText,
		"license.go": "package x\n", "license_test.go": "package x\n", "licenses.json": "{}", "LICENSES": "x",
	})
	l, err := sbom.ClassifyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"COPYING.txt", "LICENSE-2.0", "LICENSE-MIT", "LICENSE.MIT", "MIT-LICENSE.txt", "licence.md"}; !slices.Equal(l.Files, want) {
		t.Errorf("files read %q, want %q", l.Files, want)
	}
	if l.String() != "MIT" {
		t.Errorf("licence %s (%s), want MIT", l, l.Reason)
	}
}
