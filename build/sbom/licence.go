package sbom

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/licensecheck"
)

// NoAssertion is what the document says about a licence it could not classify.
const NoAssertion = "NOASSERTION"

// minCoverage is the share of a licence file, in percent, that known licence texts
// must cover for the file to count as classified (pkg.go.dev uses the same bar).
const minCoverage = 75

// maxLicenceFile bounds what is read of one licence file.
const maxLicenceFile = 1 << 20

// Licence is what the licence files at the root of a module say.
type Licence struct {
	// IDs are the licences found, sorted; empty when the files could not be classified.
	IDs []string
	// Files are the licence files read (base names), sorted.
	Files []string
	// Reason says why IDs is empty.
	Reason string
}

// Classified reports whether every licence file was recognised.
func (l Licence) Classified() bool { return len(l.IDs) > 0 }

// String is the licence as an SPDX-style expression, or NOASSERTION.
func (l Licence) String() string {
	if !l.Classified() {
		return NoAssertion
	}
	return strings.Join(l.IDs, " AND ")
}

// choices is the licence as CycloneDX license entries: SPDX ids as id, the few
// licensecheck ids that SPDX does not know as name, NOASSERTION as name.
func (l Licence) choices() []LicenseChoice {
	if !l.Classified() {
		return []LicenseChoice{{License: License{Name: NoAssertion}}}
	}
	out := make([]LicenseChoice, 0, len(l.IDs))
	for _, id := range l.IDs {
		if notSPDX(id) {
			out = append(out, LicenseChoice{License: License{Name: id}})
			continue
		}
		out = append(out, LicenseChoice{License: License{ID: id}})
	}
	return out
}

// notSPDX reports whether id is one of the ids licensecheck v0.3.1 reports that are
// not on the SPDX licence list (its licenses/README.md, "Delta from SPDX: added").
func notSPDX(id string) bool {
	switch id {
	case "Aladdin-9", "Anti996", "BSD-1-Clause-Clear", "BSD-3-Clause-NoTrademark",
		"CommonsClause", "CC-BY-NC-SA-3.0-US", "LGPL-2.0-or-3.0", "GooglePatentClause",
		"GooglePatentsFile", "MIT-NoAd", "Prosperity-3.0.0":
		return true
	}
	return false
}

// isLicenceFile reports whether a file name is one of the usual names of a licence
// file (pkg.go.dev reads the same): LICENSE, LICENCE, COPYING or UNLICENSE, alone,
// with a text or licence extension (LICENSE.md, LICENSE.MIT), with a suffix
// (LICENSE-APACHE, LICENSE-2.0.txt), or MIT-LICENSE; source files such as license.go
// or license_test.go are not.
func isLicenceFile(name string) bool {
	upper := strings.ToUpper(name)
	switch ext := filepath.Ext(upper); ext {
	case "", ".MD", ".TXT", ".MARKDOWN", ".RST", ".MIT", ".APACHE", ".BSD", ".CODE", ".DOCS":
	default:
		if strings.Trim(ext[1:], "0123456789") != "" { // LICENSE-2.0 has the "extension" .0
			return false
		}
	}
	for _, prefix := range []string{"MIT-", "MIT_"} {
		upper = strings.TrimPrefix(upper, prefix)
	}
	for _, base := range []string{"LICENSE", "LICENCE", "COPYING", "UNLICENSE"} {
		rest, ok := strings.CutPrefix(upper, base)
		if ok && (rest == "" || rest[0] == '.' || rest[0] == '-' || rest[0] == '_') {
			return true
		}
	}
	return false
}

// ClassifyDir reads the licence files directly in dir and names their licences
// with licensecheck. A directory without licence files, or with one whose text is
// less than 75% known licence text, is not classified (Reason says why).
func ClassifyDir(dir string) (Licence, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Licence{}, fmt.Errorf("licence files: %w", err)
	}
	var l Licence
	ids := map[string]bool{}
	for _, e := range entries {
		if !e.Type().IsRegular() || !isLicenceFile(e.Name()) {
			continue
		}
		l.Files = append(l.Files, e.Name())
		text, err := readBounded(filepath.Join(dir, e.Name()))
		if err != nil {
			return Licence{}, err
		}
		cov := licensecheck.Scan(text)
		if cov.Percent < minCoverage {
			// One unrecognised file makes the whole unknown: asserting only the
			// licences recognised elsewhere could understate the obligations.
			return Licence{
				Files:  []string{e.Name()},
				Reason: fmt.Sprintf("%s: %.0f%% of the text is known licence text (want %d%%)", e.Name(), cov.Percent, minCoverage),
			}, nil
		}
		for _, m := range cov.Match {
			ids[m.ID] = true
		}
	}
	if len(l.Files) == 0 {
		l.Reason = "no licence file (LICENSE, LICENCE, COPYING, UNLICENSE)"
		return l, nil
	}
	for id := range ids {
		l.IDs = append(l.IDs, id)
	}
	slices.Sort(l.IDs)
	slices.Sort(l.Files)
	return l, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("licence file: %w", err)
	}
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, maxLicenceFile+1))
	if err != nil {
		return nil, fmt.Errorf("licence file %s: %w", path, err)
	}
	if len(text) > maxLicenceFile {
		return nil, fmt.Errorf("licence file %s: larger than %d bytes", path, maxLicenceFile)
	}
	return text, nil
}
