// Package ociimage builds the platzwart container image without a container
// engine or a base image: the static binary, /etc/passwd and /etc/group for uid
// 65532 and a world-writable /tmp in one layer, per platform, in an OCI image index.
// It writes an OCI layout archive, a docker-archive per platform (for `minikube
// image load`) and a CycloneDX SBOM, and pushes to a registry on request.
//
// Builds are reproducible: every time in the image is the commit time, tar entries
// are sorted and owned by 0:0, and the binary is built without paths or VCS stamps,
// so one commit built twice with the toolchain go.mod names has one digest.
package ociimage

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/platzwart/platzwart/build/sbom"
)

// Repository is the image repository `make image` tags: the project's own namespace
// on ghcr.io, the chart's default (charts/platzwart, image.registry + repository).
const Repository = "ghcr.io/platzwart/platzwart"

const (
	title       = "platzwart"
	description = "GitOps controller for self-hosted workplaces: keeps identity, chat, video, files and office in the state a Git repository declares"
)

// Options say what to build.
type Options struct {
	// ModuleDir is the platzwart repository (the Go module root).
	ModuleDir string
	// OutDir receives the archives and the SBOM.
	OutDir string
	// Version is linked into the binary and is the image tag.
	Version string
	// Commit is the revision the labels name; its time is every time in the image.
	Commit Commit
	// Platforms to build, in index order; linux only.
	Platforms []v1.Platform
	// Repository is tagged with Version; default Repository.
	Repository string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// PlatformImage is the image of one platform.
type PlatformImage struct {
	Platform v1.Platform
	Image    v1.Image
	Digest   v1.Hash
	// DockerArchive is the path of its docker-archive.
	DockerArchive string
	// LayerSize is the compressed size of its layer, BinarySize of the binary.
	LayerSize, BinarySize int64
}

// Result is what a build made.
type Result struct {
	// Ref is Repository:Version.
	Ref         name.Tag
	Index       v1.ImageIndex
	IndexDigest v1.Hash
	Images      []PlatformImage
	// OCIArchive is the path of the OCI layout archive, SBOM that of the CycloneDX document.
	OCIArchive, SBOM string
	// Metadata is what the labels say.
	Metadata Metadata
	// Modules is the SBOM's module list with licences.
	Modules sbom.Result
}

// tagPattern is what a registry accepts as a tag (distribution spec).
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// Build compiles the binaries, assembles the image index and writes the archives
// and the SBOM into OutDir.
func Build(ctx context.Context, o Options) (*Result, error) {
	b, err := newBuilder(o)
	if err != nil {
		return nil, err
	}
	if b.work, err = os.MkdirTemp("", "platzwart-image-"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(b.work)
	if err := b.compile(ctx); err != nil {
		return nil, err
	}
	if err := b.assemble(); err != nil {
		return nil, err
	}
	if err := b.writeArchives(); err != nil {
		return nil, err
	}
	if err := b.writeSBOM(ctx); err != nil {
		return nil, err
	}
	return b.res, nil
}

// builder carries one build through its steps.
type builder struct {
	o        Options
	log      io.Writer
	work     string   // temporary: the binaries
	binaries []string // per platform, in o.Platforms order
	mainPath string   // the main module's path, from the binary
	res      *Result
}

func newBuilder(o Options) (*builder, error) {
	if !tagPattern.MatchString(o.Version) {
		return nil, fmt.Errorf("version %q: not usable as an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})", o.Version)
	}
	if o.Commit.Revision == "" || o.Commit.Time.IsZero() {
		return nil, fmt.Errorf("commit: revision and time are required (HeadCommit)")
	}
	if len(o.Platforms) == 0 {
		return nil, fmt.Errorf("platforms: none given")
	}
	for _, p := range o.Platforms {
		if p.OS != "linux" {
			return nil, fmt.Errorf("platform %s: only linux images are built", p)
		}
	}
	if o.Repository == "" {
		o.Repository = Repository
	}
	ref, err := name.NewTag(o.Repository + ":" + o.Version)
	if err != nil {
		return nil, fmt.Errorf("image reference: %w", err)
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	b := &builder{o: o, log: o.Log, res: &Result{Ref: ref}}
	if b.log == nil {
		b.log = io.Discard
	}
	return b, nil
}

// compile builds the binary of every platform and reads the main module's path
// from the first.
func (b *builder) compile(ctx context.Context) error {
	for _, p := range b.o.Platforms {
		start := time.Now()
		bin := filepath.Join(b.work, fmt.Sprintf("platzwart-%s-%s", p.OS, p.Architecture))
		if err := compile(ctx, b.o.ModuleDir, p, b.o.Version, bin); err != nil {
			return err
		}
		st, err := os.Stat(bin)
		if err != nil {
			return err
		}
		b.binaries = append(b.binaries, bin)
		b.res.Images = append(b.res.Images, PlatformImage{Platform: p, BinarySize: st.Size()})
		fmt.Fprintf(b.log, "compiled %s: %s in %s\n", p, mib(st.Size()), time.Since(start).Round(100*time.Millisecond))
	}
	info, err := buildinfo.ReadFile(b.binaries[0])
	if err != nil {
		return fmt.Errorf("build information: %w", err)
	}
	b.mainPath = info.Main.Path
	return nil
}

// assemble makes the labels, an image per platform and the index.
func (b *builder) assemble() error {
	licence, err := sbom.ClassifyDir(b.o.ModuleDir)
	if err != nil {
		return fmt.Errorf("licence of %s: %w", b.o.ModuleDir, err)
	}
	b.res.Metadata = Metadata{
		Title:       title,
		Description: description,
		Source:      "https://" + b.mainPath,
		Revision:    b.o.Commit.Revision,
		Version:     b.o.Version,
		Licenses:    licence.String(),
		Created:     b.o.Commit.Time,
	}
	images := make([]v1.Image, len(b.o.Platforms))
	for i, p := range b.o.Platforms {
		start := time.Now()
		if images[i], err = platformImage(b.binaries[i], p, b.res.Metadata); err != nil {
			return err
		}
		pi := &b.res.Images[i]
		pi.Image = images[i]
		if pi.Digest, err = images[i].Digest(); err != nil {
			return fmt.Errorf("image %s: %w", p, err)
		}
		layers, err := images[i].Layers()
		if err != nil {
			return fmt.Errorf("image %s: %w", p, err)
		}
		if pi.LayerSize, err = layers[0].Size(); err != nil {
			return fmt.Errorf("image %s: %w", p, err)
		}
		fmt.Fprintf(b.log, "image %s: %s, layer %s gzipped in %s\n", p, pi.Digest, mib(pi.LayerSize), time.Since(start).Round(100*time.Millisecond))
	}
	if b.res.Index, err = index(images, b.o.Platforms, b.res.Metadata); err != nil {
		return err
	}
	if b.res.IndexDigest, err = b.res.Index.Digest(); err != nil {
		return fmt.Errorf("image index: %w", err)
	}
	return nil
}

// writeArchives writes the OCI layout archive and a docker-archive per platform.
func (b *builder) writeArchives() error {
	ref := b.res.Ref
	b.res.OCIArchive = filepath.Join(b.o.OutDir, b.baseName()+".oci.tar")
	if err := writeFile(b.res.OCIArchive, func(w io.Writer) error {
		return writeOCIArchive(w, b.res.Index, ref, b.o.Commit.Time)
	}); err != nil {
		return err
	}
	for i := range b.res.Images {
		pi := &b.res.Images[i]
		pi.DockerArchive = filepath.Join(b.o.OutDir, fmt.Sprintf("%s-%s-%s.docker.tar", b.baseName(), pi.Platform.OS, pi.Platform.Architecture))
		if err := writeFile(pi.DockerArchive, func(w io.Writer) error { return writeDockerArchive(w, pi.Image, ref) }); err != nil {
			return err
		}
	}
	return nil
}

// writeSBOM writes the CycloneDX document of the binaries, about the image index.
func (b *builder) writeSBOM(ctx context.Context) error {
	env, err := goEnv(ctx, b.o.ModuleDir, "GOMODCACHE", "GOROOT")
	if err != nil {
		return err
	}
	purl := ociPURL(b.res.Ref, b.res.IndexDigest)
	b.res.Modules, err = sbom.Generate(sbom.Input{
		Subject: sbom.Component{
			Type: sbom.TypeContainer, BOMRef: purl, Name: b.res.Ref.Context().Name(), Version: b.o.Version,
			Description: description, PURL: purl,
		},
		Binaries:    b.binaries,
		MainVersion: b.o.Version,
		MainDir:     b.o.ModuleDir,
		ModCache:    env[0],
		GoRoot:      env[1],
		Timestamp:   b.o.Commit.Time,
		Tool:        sbom.Component{Type: sbom.TypeApplication, Name: b.mainPath + "/build/ociimage", Version: b.o.Version},
	})
	if err != nil {
		return err
	}
	b.res.SBOM = filepath.Join(b.o.OutDir, b.baseName()+".cdx.json")
	return writeFile(b.res.SBOM, b.res.Modules.BOM.WriteJSON)
}

func (b *builder) baseName() string { return "platzwart-" + b.o.Version }

// ociPURL is the image's package URL (purl-spec, type oci).
func ociPURL(ref name.Tag, digest v1.Hash) string {
	repo := ref.Context()
	last := repo.RepositoryStr()[strings.LastIndex(repo.RepositoryStr(), "/")+1:]
	return fmt.Sprintf("pkg:oci/%s@%s%%3A%s?repository_url=%s&tag=%s", last, digest.Algorithm, digest.Hex, repo.Name(), ref.TagStr())
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
