package ociimage

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// workingDir is the only directory the image may write to (the chart mounts an
// emptyDir there; the root filesystem is read-only), so a relative path stays there.
const workingDir = "/tmp"

// Metadata is what the labels and annotations say about the image.
type Metadata struct {
	Title, Description string
	// Source is the repository URL, Revision the commit, Version the version string.
	Source, Revision, Version string
	// Licenses is an SPDX expression or NOASSERTION.
	Licenses string
	// Created is the commit time (SOURCE_DATE_EPOCH): every time in the image.
	Created time.Time
}

// labels are the OCI annotation keys (image-spec annotations.md) with their values;
// the same map is the config's Labels and the index's annotations.
func (m Metadata) labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       m.Title,
		"org.opencontainers.image.description": m.Description,
		"org.opencontainers.image.source":      m.Source,
		"org.opencontainers.image.url":         m.Source,
		"org.opencontainers.image.revision":    m.Revision,
		"org.opencontainers.image.version":     m.Version,
		"org.opencontainers.image.licenses":    m.Licenses,
		"org.opencontainers.image.created":     m.Created.UTC().Format(time.RFC3339),
	}
}

// platformImage builds the image of one platform from its binary. The layer is
// held in memory (the uncompressed tar and, once computed, its gzip at level
// gzip.BestCompression), so the image stays usable after the binary is removed.
func platformImage(binary string, p v1.Platform, m Metadata) (v1.Image, error) {
	var layerTar bytes.Buffer
	if err := writeRootFS(&layerTar, binary, m.Created); err != nil {
		return nil, fmt.Errorf("image %s: %w", p, err)
	}
	layer, err := tarball.LayerFromOpener(
		func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar.Bytes())), nil },
		tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressionLevel(gzip.BestCompression),
		tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("image %s: layer: %w", p, err)
	}

	created := v1.Time{Time: m.Created.UTC()}
	cfg := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      created,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			User: strconv.Itoa(nonrootUID) + ":" + strconv.Itoa(nonrootUID),
			// The chart passes `controller` and its flags as args, which replace
			// Cmd and keep Entrypoint; `docker run IMAGE version` works the same way.
			Entrypoint: []string{BinaryPath},
			Cmd:        []string{"controller"},
			WorkingDir: workingDir,
			Labels:     m.labels(),
		},
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", p, err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   created,
			CreatedBy: "platzwart build/ociimage: " + BinaryPath + ", /etc/passwd, /etc/group, /tmp",
			Comment:   "platzwart " + m.Version,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", p, err)
	}
	return img, nil
}

// index puts the platform images into an OCI image index annotated like the images.
func index(images []v1.Image, platforms []v1.Platform, m Metadata) (v1.ImageIndex, error) {
	adds := make([]mutate.IndexAddendum, 0, len(images))
	for i, img := range images {
		adds = append(adds, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &platforms[i]},
		})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	annotated, ok := mutate.Annotations(idx, m.labels()).(v1.ImageIndex)
	if !ok {
		return nil, fmt.Errorf("image index: annotations dropped the index")
	}
	return annotated, nil
}
