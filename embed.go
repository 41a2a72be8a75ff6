// Package platzwart embeds the built-in catalog (components, profiles and charts) so
// the binary works offline and air-gapped.
package platzwart

import (
	"embed"
	"io/fs"
)

//go:embed components profiles all:charts
var builtin embed.FS

// Builtin returns the built-in catalog: components/, profiles/ and charts/ at its root.
func Builtin() fs.FS { return builtin }
