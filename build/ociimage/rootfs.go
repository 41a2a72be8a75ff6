package ociimage

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// The user the image runs as (distroless' "nonroot"; the chart's runAsUser).
const (
	nonrootUID  = 65532
	nonrootName = "nonroot"
)

// BinaryPath is where the platzwart binary is in the image.
const BinaryPath = "/platzwart"

// rootEntry is one entry of the image's only layer.
type rootEntry struct {
	name string // without a leading slash; directories end in "/"
	mode int64
	data string // regular files other than the binary
	file string // the binary: copied from this path
}

// rootEntries lists the layer in tar order (sorted by name): the binary, the user
// database for uid/gid 65532 and a world-writable /tmp. Nothing else: no shell, no
// libc, no CA bundle (the binary carries fallback roots, cmd/platzwart/roots.go).
func rootEntries(binary string) []rootEntry {
	passwd := strings.Join([]string{
		"root:x:0:0:root:/root:/sbin/nologin",
		fmt.Sprintf("%s:x:%d:%d:%s:/tmp:/sbin/nologin", nonrootName, nonrootUID, nonrootUID, nonrootName),
	}, "\n") + "\n"
	group := strings.Join([]string{
		"root:x:0:",
		fmt.Sprintf("%s:x:%d:", nonrootName, nonrootUID),
	}, "\n") + "\n"
	return []rootEntry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: group},
		{name: "etc/passwd", mode: 0o644, data: passwd},
		{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, file: binary},
		{name: "tmp/", mode: 0o1777},
	}
}

// writeRootFS writes the layer as an uncompressed tar: every entry owned by 0:0
// with the modification time mtime (the commit time), in a fixed order, so that
// the same binary always gives the same bytes.
func writeRootFS(w io.Writer, binary string, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, e := range rootEntries(binary) {
		hdr := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			ModTime: mtime.UTC().Truncate(time.Second),
			Format:  tar.FormatUSTAR,
		}
		var body io.Reader
		switch {
		case strings.HasSuffix(e.name, "/"):
			hdr.Typeflag = tar.TypeDir
		case e.file != "":
			f, err := os.Open(e.file)
			if err != nil {
				return fmt.Errorf("layer: %w", err)
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return fmt.Errorf("layer: %w", err)
			}
			hdr.Typeflag, hdr.Size, body = tar.TypeReg, st.Size(), f
		default:
			hdr.Typeflag, hdr.Size, body = tar.TypeReg, int64(len(e.data)), strings.NewReader(e.data)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("layer: %s: %w", e.name, err)
		}
		if body != nil {
			if _, err := io.Copy(tw, body); err != nil {
				return fmt.Errorf("layer: %s: %w", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	return nil
}
