package controller

import (
	"fmt"
	"io/fs"
	"os"
)

// openRoot opens dir as a file system that cannot be left through ".." or symlinks.
// The root stays open for the life of the loaded repository (charts are read lazily).
func openRoot(dir string) (fs.FS, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("repository folder %q: %w", dir, err)
	}
	return root.FS(), nil
}
