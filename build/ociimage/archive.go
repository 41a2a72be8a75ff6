package ociimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations on index.json's entry that name the image to importers: the OCI
// image-layout one (a tag, as skopeo's oci-archive:FILE:TAG reads it) and
// containerd's (the full reference, as `ctr images import` and Docker read it).
const (
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerName = "io.containerd.image.name"
)

// blob is one file under blobs/sha256/ of an OCI layout.
type blob struct {
	digest v1.Hash
	size   int64
	open   func() (io.ReadCloser, error)
}

// layoutBlobs returns every blob of the index: the index, each image's manifest,
// config and layers, sorted by digest, each once.
func layoutBlobs(idx v1.ImageIndex) ([]blob, error) {
	seen := map[v1.Hash]bool{}
	var blobs []blob
	addBytes := func(b []byte, err error) error {
		if err != nil {
			return err
		}
		h, size, err := v1.SHA256(bytes.NewReader(b))
		if err != nil {
			return err
		}
		if !seen[h] {
			seen[h] = true
			blobs = append(blobs, blob{digest: h, size: size, open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }})
		}
		return nil
	}
	if err := addBytes(idx.RawManifest()); err != nil {
		return nil, fmt.Errorf("index manifest: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("index manifest: %w", err)
	}
	for _, desc := range im.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", desc.Digest, err)
		}
		if err := addBytes(img.RawManifest()); err != nil {
			return nil, fmt.Errorf("image %s: manifest: %w", desc.Digest, err)
		}
		if err := addBytes(img.RawConfigFile()); err != nil {
			return nil, fmt.Errorf("image %s: config: %w", desc.Digest, err)
		}
		layers, err := img.Layers()
		if err != nil {
			return nil, fmt.Errorf("image %s: layers: %w", desc.Digest, err)
		}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return nil, fmt.Errorf("image %s: layer: %w", desc.Digest, err)
			}
			size, err := l.Size()
			if err != nil {
				return nil, fmt.Errorf("image %s: layer %s: %w", desc.Digest, d, err)
			}
			if !seen[d] {
				seen[d] = true
				blobs = append(blobs, blob{digest: d, size: size, open: l.Compressed})
			}
		}
	}
	slices.SortFunc(blobs, func(a, b blob) int { return strings.Compare(a.digest.String(), b.digest.String()) })
	return blobs, nil
}

// writeOCIArchive writes the index as a tar of an OCI image layout (image-spec
// image-layout.md): oci-layout, index.json naming ref, blobs/sha256/…. Entries are
// sorted, owned by 0:0 and dated mtime, so the same index gives the same bytes.
func writeOCIArchive(w io.Writer, idx v1.ImageIndex, ref name.Tag, mtime time.Time) error {
	blobs, err := layoutBlobs(idx)
	if err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	digest, err := idx.Digest()
	if err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	size, err := idx.Size()
	if err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	indexJSON, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: types.OCIImageIndex,
			Digest:    digest,
			Size:      size,
			Annotations: map[string]string{
				annotationRefName:       ref.TagStr(),
				annotationContainerName: ref.Name(),
			},
		}},
	})
	if err != nil {
		return fmt.Errorf("oci archive: index.json: %w", err)
	}
	layoutJSON := []byte(`{"imageLayoutVersion":"1.0.0"}`)

	tw := tar.NewWriter(w)
	mtime = mtime.UTC().Truncate(time.Second)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: mtime, Format: tar.FormatUSTAR})
	}
	file := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: mtime, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
		n, err := io.Copy(tw, r)
		if err == nil && n != size {
			err = fmt.Errorf("%s: %d bytes, want %d", name, n, size)
		}
		return err
	}
	if err := dir("blobs/"); err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	if err := dir("blobs/sha256/"); err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	for _, b := range blobs {
		rc, err := b.open()
		if err != nil {
			return fmt.Errorf("oci archive: blob %s: %w", b.digest, err)
		}
		err = file("blobs/sha256/"+b.digest.Hex, b.size, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("oci archive: blob %s: %w", b.digest, err)
		}
	}
	if err := file("index.json", int64(len(indexJSON)), bytes.NewReader(indexJSON)); err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	if err := file("oci-layout", int64(len(layoutJSON)), bytes.NewReader(layoutJSON)); err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("oci archive: %w", err)
	}
	return nil
}

// writeDockerArchive writes one image as `docker save` does (manifest.json with
// RepoTags, config, layers): what `docker load`, `ctr images import`, `podman load`
// and so `minikube image load` read with every container runtime.
func writeDockerArchive(w io.Writer, img v1.Image, ref name.Tag) error {
	if err := tarball.Write(ref, img, w); err != nil {
		return fmt.Errorf("docker archive: %w", err)
	}
	return nil
}

// writeFile writes path through a temporary file in the same directory and renames
// it into place, so that an interrupted build leaves no half-written archive.
func writeFile(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
