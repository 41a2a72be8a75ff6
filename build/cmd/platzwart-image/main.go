// Command platzwart-image builds the platzwart container image (build/ociimage)
// from this repository without a container engine, writes it as an OCI layout
// archive and a docker-archive per platform with a CycloneDX SBOM beside them, and
// pushes it with --push. `make image` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/platzwart/platzwart/build/ociimage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("platzwart-image", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var (
		moduleDir  = fs.String("C", ".", "the platzwart repository")
		outDir     = fs.String("out", "dist", "directory for the archives and the SBOM")
		version    = fs.String("version", "", "version linked into the binary and image tag (default: git describe --tags --always --dirty)")
		revision   = fs.String("revision", "", "commit named in the labels (default: git rev-parse HEAD)")
		platforms  = fs.String("platform", "linux/amd64,linux/arm64", "comma-separated platforms")
		repository = fs.String("repository", ociimage.Repository, "image repository tagged with the version")
		push       = fs.String("push", "", "also push the image index to this reference (REGISTRY/REPO[:TAG]; default tag: the version)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	start := time.Now()

	// Git is asked only for what the flags and SOURCE_DATE_EPOCH leave open, so a
	// source tree without .git builds with -revision, -version and SOURCE_DATE_EPOCH.
	var commit ociimage.Commit
	var err error
	if *revision == "" || os.Getenv("SOURCE_DATE_EPOCH") == "" {
		if commit, err = ociimage.HeadCommit(ctx, *moduleDir); err != nil {
			return err
		}
	}
	if *revision != "" {
		commit.Revision = *revision
	}
	// SOURCE_DATE_EPOCH (reproducible-builds.org) overrides the commit time.
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		secs, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		commit.Time = time.Unix(secs, 0).UTC()
	}
	if *version == "" {
		if *version, err = ociimage.Describe(ctx, *moduleDir); err != nil {
			return err
		}
	}
	var plats []v1.Platform
	for _, s := range strings.Split(*platforms, ",") {
		p, err := v1.ParsePlatform(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--platform %q: %w", s, err)
		}
		plats = append(plats, *p)
	}
	var pushRef name.Reference
	if *push != "" {
		if pushRef, err = name.ParseReference(*push, name.WithDefaultTag(*version)); err != nil {
			return fmt.Errorf("--push: %w", err)
		}
	}

	res, err := ociimage.Build(ctx, ociimage.Options{
		ModuleDir: *moduleDir, OutDir: *outDir, Version: *version, Commit: commit,
		Platforms: plats, Repository: *repository, Log: errOut,
	})
	if err != nil {
		return err
	}
	if pushRef != nil {
		if err := ociimage.Push(ctx, res.Index, pushRef); err != nil {
			return err
		}
		fmt.Fprintf(errOut, "pushed %s@%s\n", pushRef, res.IndexDigest)
	}
	report(out, res, time.Since(start))
	return nil
}

// report prints what was built and where it is, and what to do with it.
func report(w io.Writer, res *ociimage.Result, took time.Duration) {
	fmt.Fprintf(w, "image %s (built in %s)\n", res.Ref, took.Round(time.Second))
	fmt.Fprintf(w, "  %-11s %s\n", "index", res.IndexDigest)
	for _, pi := range res.Images {
		fmt.Fprintf(w, "  %-11s %s  layer %s (binary %s)\n", pi.Platform, pi.Digest, mib(pi.LayerSize), mib(pi.BinarySize))
	}
	fmt.Fprintf(w, "  %-11s %s, created %s, licence %s\n", "revision", res.Metadata.Revision,
		res.Metadata.Created.Format(time.RFC3339), res.Metadata.Licenses)
	fmt.Fprintln(w, "files")
	fmt.Fprintf(w, "  %s  (OCI layout: skopeo copy oci-archive:…, crane push)\n", fileWithSize(res.OCIArchive))
	for _, pi := range res.Images {
		fmt.Fprintf(w, "  %s  (docker-archive %s: minikube image load, docker load)\n", fileWithSize(pi.DockerArchive), pi.Platform)
	}
	fmt.Fprintf(w, "  %s  (CycloneDX %s SBOM, %d modules)\n", fileWithSize(res.SBOM), res.Modules.BOM.SpecVersion, len(res.Modules.Modules))
	if un := res.Modules.Unclassified(); len(un) > 0 {
		fmt.Fprintf(w, "licence NOASSERTION (not classified) for %d module(s):\n", len(un))
		for _, m := range un {
			fmt.Fprintf(w, "  %s@%s: %s\n", m.Path, m.Version, m.Licence.Reason)
		}
	}
	fmt.Fprintln(w, "next (docs/minikube.md)")
	fmt.Fprintf(w, "  minikube image load %s\n", res.Images[0].DockerArchive)
	fmt.Fprintf(w, "  platzwart install --repo URL --set image.tag=%s\n", res.Ref.TagStr())
}

func fileWithSize(path string) string {
	if st, err := os.Stat(path); err == nil {
		return fmt.Sprintf("%s (%s)", path, mib(st.Size()))
	}
	return path
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
