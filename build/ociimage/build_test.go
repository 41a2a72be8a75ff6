package ociimage_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	appsv1 "k8s.io/api/apps/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/platzwart/platzwart/build/ociimage"
	"github.com/platzwart/platzwart/build/sbom"
)

const testVersion = "v0.0.0-imagetest"

// TestBuild builds the image of this repository twice, from fresh output
// directories, for the platform the test runs on, and checks what a user of the
// archives gets: one digest, a valid OCI layout and docker-archive, a layer with
// the binary and the user database only, a binary that runs from it, the config
// and labels, the chart's arguments working with the entrypoint, an SBOM of every
// compiled module, and a push to a registry.
func TestBuild(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image is linux; its binary runs only on linux")
	}
	ctx := t.Context()
	workTree, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	head := strings.TrimSpace(runGit(t, workTree, "rev-parse", "HEAD"))
	commit, err := ociimage.HeadCommit(ctx, workTree)
	if err != nil {
		t.Fatal(err)
	}
	if commit.Revision != head {
		t.Fatalf("HeadCommit %s, git rev-parse HEAD %s", commit.Revision, head)
	}
	// Two copies of the work tree in two directories: the builds must not depend
	// on where the source is, and edits made while the test runs do not reach them.
	files := sourceFiles(t, workTree)
	moduleDir := copyFiles(t, workTree, files)
	otherDir := copyFiles(t, moduleDir, files)
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	build := func(dir string) *ociimage.Result {
		t.Helper()
		start := time.Now()
		res, err := ociimage.Build(ctx, ociimage.Options{
			ModuleDir: dir, OutDir: t.TempDir(), Version: testVersion, Commit: commit,
			Platforms: []v1.Platform{platform},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("built %s in %s", res.IndexDigest, time.Since(start).Round(time.Second))
		return res
	}
	first, second := build(moduleDir), build(otherDir)

	t.Run("TwoBuildsOneDigest", func(t *testing.T) {
		if first.IndexDigest != second.IndexDigest {
			t.Errorf("index digests differ: %s, %s", first.IndexDigest, second.IndexDigest)
		}
		for _, pair := range [][2]string{
			{first.OCIArchive, second.OCIArchive},
			{first.Images[0].DockerArchive, second.Images[0].DockerArchive},
			{first.SBOM, second.SBOM},
		} {
			if a, b := fileDigest(t, pair[0]), fileDigest(t, pair[1]); a != b {
				t.Errorf("%s and %s differ: %s, %s", filepath.Base(pair[0]), filepath.Base(pair[1]), a, b)
			}
		}
	})

	// Everything below reads what was written, not what Build returned.
	idx := readOCIArchive(t, first.OCIArchive)
	img := onlyImage(t, idx, first.IndexDigest)
	root := unpack(t, img)
	bin := filepath.Join(root, strings.TrimPrefix(ociimage.BinaryPath, "/"))

	t.Run("OCIArchiveIsAValidLayout", func(t *testing.T) {
		if err := validate.Index(idx); err != nil {
			t.Error(err)
		}
	})

	t.Run("DockerArchiveHoldsTheSameImage", func(t *testing.T) {
		tag, err := name.NewTag(ociimage.Repository + ":" + testVersion)
		if err != nil {
			t.Fatal(err)
		}
		dimg, err := tarball.ImageFromPath(first.Images[0].DockerArchive, &tag)
		if err != nil {
			t.Fatalf("%s has no image tagged %s: %v", first.Images[0].DockerArchive, tag, err)
		}
		if err := validate.Image(dimg); err != nil {
			t.Error(err)
		}
		want, _ := img.ConfigName()
		if got, _ := dimg.ConfigName(); got != want {
			t.Errorf("docker-archive config %s, OCI archive config %s", got, want)
		}
	})

	t.Run("LayerHoldsOnlyTheBinaryAndTheUser", func(t *testing.T) {
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("%d layers (%v), want 1", len(layers), err)
		}
		want := []string{"etc/:drwxr-xr-x", "etc/group:-rw-r--r--", "etc/passwd:-rw-r--r--", "platzwart:-rwxr-xr-x", "tmp/:dtrwxrwxrwx"}
		var got []string
		forEachEntry(t, layers[0], func(h *tar.Header, _ io.Reader) {
			got = append(got, h.Name+":"+h.FileInfo().Mode().String())
			if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(commit.Time) {
				t.Errorf("%s: owner %d:%d, time %s; want 0:0, %s", h.Name, h.Uid, h.Gid, h.ModTime, commit.Time)
			}
		})
		if !slices.Equal(got, want) {
			t.Errorf("layer entries\n%q\nwant (no shell, nothing else)\n%q", got, want)
		}
		passwd, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
		group, _ := os.ReadFile(filepath.Join(root, "etc", "group"))
		if !strings.Contains(string(passwd), "\nnonroot:x:65532:65532:") || !strings.Contains(string(group), "\nnonroot:x:65532:") {
			t.Errorf("no nonroot user 65532:\n%s%s", passwd, group)
		}
	})

	t.Run("BinaryRunsFromTheLayer", func(t *testing.T) {
		out := runBinary(t, bin, "version")
		if !strings.HasPrefix(out, "platzwart "+testVersion+" ") {
			t.Errorf("platzwart version: %q, want the version linked in", out)
		}
		if gomod := runGo(t, "version", bin); !strings.Contains(gomod, runtime.Version()) {
			t.Errorf("go version %s: %q", bin, gomod)
		}
	})

	t.Run("Config", func(t *testing.T) {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/platzwart"}) || !slices.Equal(c.Cmd, []string{"controller"}) || c.WorkingDir != "/tmp" {
			t.Errorf("user %q entrypoint %q cmd %q workdir %q", c.User, c.Entrypoint, c.Cmd, c.WorkingDir)
		}
		if len(c.Env) != 0 || len(c.ExposedPorts) != 0 || len(c.Volumes) != 0 {
			t.Errorf("env %q, ports %v, volumes %v: want none", c.Env, c.ExposedPorts, c.Volumes)
		}
		if cf.OS != platform.OS || cf.Architecture != platform.Architecture || !cf.Created.Equal(commit.Time) {
			t.Errorf("os/arch %s/%s created %s", cf.OS, cf.Architecture, cf.Created)
		}
		want := map[string]string{
			"org.opencontainers.image.revision": head,
			"org.opencontainers.image.version":  testVersion,
			"org.opencontainers.image.source":   "https://github.com/platzwart/platzwart",
			"org.opencontainers.image.created":  commit.Time.Format(time.RFC3339),
			"org.opencontainers.image.title":    "platzwart",
			"org.opencontainers.image.licenses": licenceOf(t, moduleDir),
		}
		for k, v := range want {
			if c.Labels[k] != v {
				t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
			}
		}
		if c.Labels["org.opencontainers.image.description"] == "" {
			t.Error("no description label")
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if im.Annotations["org.opencontainers.image.revision"] != head {
			t.Errorf("index annotations %v", im.Annotations)
		}
	})

	t.Run("ChartArgsRunTheController", func(t *testing.T) {
		// The chart embedded in the image's own binary, as `platzwart install` renders it.
		manifests := runBinary(t, bin, "install", "--dry-run", "-n", "platzwart-system",
			"--repo", "https://git.example.org/workplaces.git", "--set", "image.tag="+testVersion)
		d := deployment(t, manifests)
		ctr := d.Spec.Template.Spec.Containers[0]
		if ctr.Image != first.Ref.String() {
			t.Errorf("chart image %q, image built %q", ctr.Image, first.Ref)
		}
		if string(ctr.ImagePullPolicy) != "IfNotPresent" || len(ctr.Command) != 0 {
			t.Errorf("pull policy %q, command %q: want IfNotPresent and the image's entrypoint", ctr.ImagePullPolicy, ctr.Command)
		}
		sc := ctr.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Error("chart does not set readOnlyRootFilesystem: true")
		}
		// Entrypoint + the chart's args; --help parses every flag and starts nothing.
		out := runBinary(t, bin, append(slices.Clone(ctr.Args), "--help")...)
		if !strings.Contains(out, "controller fetches --repo") {
			t.Errorf("/platzwart %s --help:\n%s", strings.Join(ctr.Args, " "), out)
		}
	})

	t.Run("SBOMListsEveryModule", func(t *testing.T) {
		doc := readSBOM(t, first.SBOM)
		listed := map[string]sbom.Component{}
		for _, c := range doc.Components {
			listed[c.Name+"@"+c.Version] = c
		}
		sums := goSum(t, filepath.Join(moduleDir, "go.sum"))
		deps := goVersionDeps(t, bin)
		if len(deps) < 50 {
			t.Fatalf("go version -m lists %d modules", len(deps))
		}
		var unclassified []string
		for _, dep := range deps {
			c, ok := listed[dep]
			if !ok {
				t.Errorf("%s (go version -m) is not in the SBOM", dep)
				continue
			}
			if !sums[dep] {
				t.Errorf("%s is not in go.sum", dep)
			}
			path, version, _ := strings.Cut(dep, "@")
			if c.Type != sbom.TypeLibrary || c.PURL != "pkg:golang/"+path+"@"+version {
				t.Errorf("%s: type %q purl %q", dep, c.Type, c.PURL)
			}
			if len(c.Licenses) == 0 {
				t.Errorf("%s: no licence", dep)
			}
			for _, l := range c.Licenses {
				if l.License.ID == "" && l.License.Name == sbom.NoAssertion {
					unclassified = append(unclassified, dep)
				} else if l.License.ID == "" && l.License.Name == "" {
					t.Errorf("%s: empty licence entry", dep)
				}
			}
		}
		var reported []string
		for _, m := range first.Modules.Unclassified() {
			if m.Path != first.Modules.Main.Path {
				reported = append(reported, m.Path+"@"+m.Version)
			}
		}
		if !slices.Equal(unclassified, reported) {
			t.Errorf("NOASSERTION in the document %q, reported %q", unclassified, reported)
		}
		if len(doc.Components) != len(deps)+2 {
			t.Errorf("%d components for %d modules + platzwart + std", len(doc.Components), len(deps))
		}
		if doc.Metadata.Component.Type != sbom.TypeContainer || !strings.Contains(doc.Metadata.Component.PURL, first.IndexDigest.Hex) {
			t.Errorf("metadata.component %+v does not name the image %s", doc.Metadata.Component, first.IndexDigest)
		}
		t.Logf("%d modules, %d NOASSERTION: %q", len(deps), len(unclassified), unclassified)
	})

	t.Run("PushToARegistry", func(t *testing.T) {
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		t.Cleanup(srv.Close)
		ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/platzwart/platzwart:" + testVersion)
		if err != nil {
			t.Fatal(err)
		}
		// The index Build returned, after Build removed its temporary files.
		if err := ociimage.Push(ctx, first.Index, ref); err != nil {
			t.Fatal(err)
		}
		pulled, err := remote.Index(ref, remote.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := pulled.Digest(); d != first.IndexDigest {
			t.Errorf("registry has %s, built %s", d, first.IndexDigest)
		}
		if err := validate.Index(pulled); err != nil {
			t.Error(err)
		}
	})
}

// sourceFiles lists the files of the work tree that git would commit: tracked and
// untracked, not ignored, still present.
func sourceFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	for _, f := range strings.Split(runGit(t, dir, "ls-files", "-z", "--cached", "--others", "--exclude-standard"), "\x00") {
		if _, err := os.Lstat(filepath.Join(dir, f)); f != "" && err == nil {
			files = append(files, f)
		}
	}
	return files
}

// copyFiles copies files (relative to src) into a new directory, keeping
// permissions and symbolic links.
func copyFiles(t *testing.T, src string, files []string) string {
	t.Helper()
	dst := t.TempDir()
	for _, f := range files {
		from, to := filepath.Join(src, f), filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		st, err := os.Lstat(from)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode()&os.ModeSymlink != 0 {
			link, err := os.Readlink(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(link, to); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// readOCIArchive unpacks an OCI layout archive and returns the index that
// index.json names, checking the name annotations importers read.
func readOCIArchive(t *testing.T, archive string) v1.ImageIndex {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		out, err := os.Create(target)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			t.Fatal(err)
		}
		out.Close()
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want the image index", len(im.Manifests))
	}
	desc := im.Manifests[0]
	if desc.Annotations["org.opencontainers.image.ref.name"] != testVersion ||
		desc.Annotations["io.containerd.image.name"] != ociimage.Repository+":"+testVersion {
		t.Errorf("index.json names the image %v", desc.Annotations)
	}
	idx, err := top.ImageIndex(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func onlyImage(t *testing.T, idx v1.ImageIndex, want v1.Hash) v1.Image {
	t.Helper()
	if d, _ := idx.Digest(); d != want {
		t.Fatalf("archive holds index %s, built %s", d, want)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index: %v, %d manifests", err, len(im.Manifests))
	}
	if p := im.Manifests[0].Platform; p == nil || p.OS != "linux" || p.Architecture != runtime.GOARCH {
		t.Errorf("platform %v", p)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// unpack writes the image's layers into a temporary root file system.
func unpack(t *testing.T, img v1.Image) string {
	t.Helper()
	root := t.TempDir()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		forEachEntry(t, l, func(h *tar.Header, r io.Reader) {
			target := filepath.Join(root, filepath.FromSlash(h.Name))
			switch h.Typeflag {
			case tar.TypeDir:
				if err := os.MkdirAll(target, 0o755); err != nil {
					t.Fatal(err)
				}
			case tar.TypeReg:
				out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, h.FileInfo().Mode().Perm())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(out, r); err != nil {
					t.Fatal(err)
				}
				out.Close()
			default:
				t.Errorf("%s: unexpected entry type %c", h.Name, h.Typeflag)
			}
		})
	}
	return root
}

func forEachEntry(t *testing.T, l v1.Layer, fn func(*tar.Header, io.Reader)) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(h, tr)
	}
}

// runBinary runs the binary with an environment that points nothing at the
// build machine's configuration and returns its standard output.
func runBinary(t *testing.T, bin string, args ...string) string {
	t.Helper()
	home := t.TempDir()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = []string{"HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "KUBECONFIG=" + filepath.Join(home, "none")}
	cmd.Dir = home
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", bin, strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String()
}

func runGo(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", args...).Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// goVersionDeps returns path@version of every module `go version -m` lists as
// compiled into the binary (the replacement where one applies).
func goVersionDeps(t *testing.T, bin string) []string {
	t.Helper()
	var deps []string
	sc := bufio.NewScanner(strings.NewReader(runGo(t, "version", "-m", bin)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[0] == "dep":
			deps = append(deps, f[1]+"@"+f[2])
		case len(f) >= 3 && f[0] == "=>":
			deps[len(deps)-1] = f[1] + "@" + f[2]
		}
	}
	return deps
}

// goSum returns the path@version of every module whose content go.sum holds.
func goSum(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]bool{}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) == 3 && !strings.HasSuffix(f[1], "/go.mod") {
			sums[f[0]+"@"+f[1]] = true
		}
	}
	return sums
}

func readSBOM(t *testing.T, path string) sbom.BOM {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc sbom.BOM
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

func licenceOf(t *testing.T, dir string) string {
	t.Helper()
	l, err := sbom.ClassifyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l.String()
}

func deployment(t *testing.T, manifests string) *appsv1.Deployment {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	for {
		var d appsv1.Deployment
		if err := dec.Decode(&d); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if d.Kind == "Deployment" {
			return &d
		}
	}
	t.Fatalf("no Deployment in\n%s", manifests)
	return nil
}

func fileDigest(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
