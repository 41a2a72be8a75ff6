package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Binaries are the executables and kwok manifests of one control-plane build.
type Binaries struct {
	// Dir is the cache directory of this build.
	Dir string

	Etcd              string
	APIServer         string
	ControllerManager string
	Scheduler         string
	Kwok              string

	// KwokStages is a file of kwok Stage objects (node, pod and volume
	// lifecycles) for kwok --config.
	KwokStages string
	// StorageClass is the manifest of the kwok-volume StorageClass.
	StorageClass string

	// Versions are the pinned versions this build was made from.
	Versions Versions
}

// Versions are the pinned versions of the control-plane components, as
// required by the tools modules.
type Versions struct {
	Kubernetes string
	Etcd       string
	Kwok       string
}

// buildRecipe changes whenever the way the binaries are built changes, so
// that the cache key changes with it.
const buildRecipe = "2"

// Tools modules under e2e/tools and the module each of them pins.
const (
	kubeModule = "k8s.io/kubernetes"
	etcdModule = "go.etcd.io/etcd/server/v3"
	kwokModule = "sigs.k8s.io/kwok"
)

var toolModules = []struct{ dir, module string }{
	{"kube", kubeModule},
	{"etcd", etcdModule},
	{"kwok", kwokModule},
}

// kwokStageFiles are the Stage manifests loaded into kwok, relative to the
// root of the kwok module.
var kwokStageFiles = []string{
	"kustomize/stage/node/fast/node-initialize.yaml",
	"kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
	"kustomize/stage/pod/fast/pod-ready.yaml",
	"kustomize/stage/pod/fast/pod-complete.yaml",
	"kustomize/stage/pod/fast/pod-delete.yaml",
	"kustomize/stage/volume/fast/pvc-provision.yaml",
	"kustomize/stage/volume/fast/pv-bind.yaml",
	"kustomize/stage/volume/fast/pvc-delete.yaml",
	"kustomize/stage/volume/fast/pv-delete.yaml",
	// Pods labelled pod-container-running-failed.stage.kwok.x-k8s.io=true fail
	// (exit code 1) instead of running or completing: the weight of this Stage
	// outranks pod-complete's, so a Job's pod so labelled fails. Tests use it for
	// Jobs that must fail (see FailJobPods).
	"kustomize/stage/pod/chaos/pod-container-running-failed.yaml",
}

// stagesFile is the name of the Stage file in a build's kwok directory: named
// after the Stage list, so that a changed list is written next to a cached
// build without rebuilding its binaries.
func stagesFile() string {
	h := sha256.Sum256([]byte(strings.Join(kwokStageFiles, "\n")))
	return "stages-" + hex.EncodeToString(h[:])[:12] + ".yaml"
}

const kwokStorageClassFile = "kustomize/stage/volume/fast/storage-class.yaml"

// Build builds the control-plane binaries into the cache directory, unless a
// build of the same pinned versions is there already. A file lock keeps
// concurrent callers (several test packages) from building at the same time;
// they wait for the first one and then use its build.
func Build(ctx context.Context, opts Options) (*Binaries, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	key, versions, err := cacheKey(opts.ToolsDir)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(opts.CacheDir, key)
	bins := binariesIn(dir, versions)
	if _, err := os.Stat(dir); err == nil {
		return bins, ensureStages(ctx, opts, versions, bins)
	}

	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache directory: %w", err)
	}
	lock, err := lockFile(ctx, dir+".lock", opts.Progress, "the control-plane build")
	if err != nil {
		return nil, err
	}
	defer lock.unlock()
	if _, err := os.Stat(dir); err == nil {
		// built by another process while we waited
		return bins, ensureStages(ctx, opts, versions, bins)
	}

	b := &builder{opts: opts, versions: versions}
	if err := b.build(ctx, dir); err != nil {
		return nil, err
	}
	return bins, nil
}

// ensureStages writes the kwok Stage file of a cached build when the build
// predates the current Stage list (only the manifests are copied again; the
// binaries stay).
func ensureStages(ctx context.Context, opts Options, versions Versions, bins *Binaries) error {
	if _, err := os.Stat(bins.KwokStages); err == nil {
		return nil
	}
	b := &builder{opts: opts, versions: versions}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("write the kwok stages: the go command is needed: %w", err)
	}
	b.goBin = goBin
	return b.copyKwokManifests(ctx, filepath.Dir(bins.KwokStages))
}

// writeFileAtomic writes data to path through a temporary file and a rename, so
// that concurrent test packages never read half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func binariesIn(dir string, v Versions) *Binaries {
	bin := filepath.Join(dir, "bin")
	return &Binaries{
		Dir:               dir,
		Etcd:              filepath.Join(bin, "etcd"),
		APIServer:         filepath.Join(bin, "kube-apiserver"),
		ControllerManager: filepath.Join(bin, "kube-controller-manager"),
		Scheduler:         filepath.Join(bin, "kube-scheduler"),
		Kwok:              filepath.Join(bin, "kwok"),
		KwokStages:        filepath.Join(dir, "kwok", stagesFile()),
		StorageClass:      filepath.Join(dir, "kwok", "storage-class.yaml"),
		Versions:          v,
	}
}

// cacheKey names a build after the pinned versions and a hash of everything
// that determines it: the go.mod and go.sum of every tools module, the build
// recipe and the platform.
func cacheKey(toolsDir string) (string, Versions, error) {
	h := sha256.New()
	fmt.Fprintf(h, "recipe %s %s/%s\n", buildRecipe, runtime.GOOS, runtime.GOARCH)
	versions := map[string]string{}
	for _, tm := range toolModules {
		for _, name := range []string{"go.mod", "go.sum"} {
			path := filepath.Join(toolsDir, tm.dir, name)
			data, err := os.ReadFile(path)
			if err != nil {
				return "", Versions{}, fmt.Errorf("read tools module: %w", err)
			}
			fmt.Fprintf(h, "%s/%s %d\n", tm.dir, name, len(data))
			h.Write(data)
			if name == "go.mod" {
				v := requiredVersion(data, tm.module)
				if v == "" {
					return "", Versions{}, fmt.Errorf("%s does not require %s", path, tm.module)
				}
				versions[tm.module] = v
			}
		}
	}
	v := Versions{Kubernetes: versions[kubeModule], Etcd: versions[etcdModule], Kwok: versions[kwokModule]}
	key := fmt.Sprintf("kubernetes-%s_etcd-%s_kwok-%s_%s", v.Kubernetes, v.Etcd, v.Kwok, hex.EncodeToString(h.Sum(nil))[:12])
	return key, v, nil
}

// requiredVersion returns the version of module that a go.mod file requires,
// or "" if it does not require it.
func requiredVersion(gomod []byte, module string) string {
	s := bufio.NewScanner(bytes.NewReader(gomod))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) > 0 && f[0] == "require" {
			f = f[1:]
		}
		if len(f) >= 2 && f[0] == module && !strings.Contains(s.Text(), "=>") {
			return f[1]
		}
	}
	return ""
}

// kubeMinor returns the minor version of a Kubernetes version: "37" for v1.37.2.
func kubeMinor(version string) string {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

type builder struct {
	opts     Options
	versions Versions
	goBin    string
}

// build builds everything into a temporary directory next to dir and renames
// it to dir when all of it succeeded.
func (b *builder) build(ctx context.Context, dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build the control plane: the go command is needed: %w", err)
	}
	b.goBin = goBin

	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove stale build directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(tmp, "bin"), 0o755); err != nil {
		return fmt.Errorf("create build directory: %w", err)
	}
	bin := filepath.Join(tmp, "bin")
	start := time.Now()
	b.logf("building the control plane into %s (first build: several minutes)", dir)

	ldflags := strings.Join([]string{
		"-s", "-w",
		"-X k8s.io/component-base/version.gitVersion=" + b.versions.Kubernetes,
		"-X k8s.io/component-base/version.gitMajor=1",
		"-X k8s.io/component-base/version.gitMinor=" + kubeMinor(b.versions.Kubernetes),
	}, " ")
	steps := []struct {
		what, module string
		args         []string
	}{
		{"etcd " + b.versions.Etcd, "etcd",
			[]string{"build", "-o", filepath.Join(bin, "etcd"), etcdModule}},
		{"kwok " + b.versions.Kwok, "kwok",
			[]string{"build", "-o", filepath.Join(bin, "kwok"), kwokModule + "/cmd/kwok"}},
		{"kube-apiserver, kube-controller-manager, kube-scheduler " + b.versions.Kubernetes, "kube",
			[]string{"build", "-ldflags", ldflags, "-o", bin + string(filepath.Separator),
				kubeModule + "/cmd/kube-apiserver",
				kubeModule + "/cmd/kube-controller-manager",
				kubeModule + "/cmd/kube-scheduler"}},
	}
	for _, step := range steps {
		stepStart := time.Now()
		b.logf("building %s", step.what)
		if _, err := b.goCommand(ctx, step.module, step.args...); err != nil {
			return fmt.Errorf("build %s: %w", step.what, err)
		}
		b.logf("built %s in %s", step.what, time.Since(stepStart).Round(time.Second))
	}
	if err := b.copyKwokManifests(ctx, filepath.Join(tmp, "kwok")); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("move the build into place: %w", err)
	}
	b.logf("control plane built in %s", time.Since(start).Round(time.Second))
	return nil
}

// copyKwokManifests copies the Stage manifests and the StorageClass out of the
// kwok module in the module cache.
func (b *builder) copyKwokManifests(ctx context.Context, dir string) error {
	out, err := b.goCommand(ctx, "kwok", "mod", "download", "-json", kwokModule)
	if err != nil {
		return fmt.Errorf("download the kwok module: %w", err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return fmt.Errorf("download the kwok module: decode go mod download output: %w", err)
	}
	if mod.Error != "" || mod.Dir == "" {
		return fmt.Errorf("download the kwok module: %s", mod.Error)
	}

	var stages bytes.Buffer
	for _, name := range kwokStageFiles {
		data, err := os.ReadFile(filepath.Join(mod.Dir, name))
		if err != nil {
			return fmt.Errorf("read kwok stage: %w", err)
		}
		fmt.Fprintf(&stages, "---\n# %s@%s/%s\n", kwokModule, b.versions.Kwok, name)
		stages.Write(bytes.TrimSpace(data))
		stages.WriteString("\n")
	}
	storageClass, err := os.ReadFile(filepath.Join(mod.Dir, kwokStorageClassFile))
	if err != nil {
		return fmt.Errorf("read kwok storage class: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create kwok manifest directory: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, stagesFile()), stages.Bytes()); err != nil {
		return fmt.Errorf("write kwok stages: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "storage-class.yaml"), storageClass); err != nil {
		return fmt.Errorf("write kwok storage class: %w", err)
	}
	return nil
}

// goCommand runs the go command in a tools module and returns its standard
// output. Its standard error (download and compile messages) goes to the
// progress writer.
func (b *builder) goCommand(ctx context.Context, module string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, b.goBin, args...)
	cmd.Dir = filepath.Join(b.opts.ToolsDir, module)
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0",
		"GOWORK=off",
		"GOFLAGS="+goflags(),
	)
	if os.Getenv("GOTOOLCHAIN") == "" {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN=auto")
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = b.opts.Progress
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s in %s: %w", strings.Join(args, " "), cmd.Dir, err)
	}
	return stdout.Bytes(), nil
}

// goflags returns GOFLAGS with -mod=readonly in place of any -mod setting:
// the go.sum files of the tools modules are committed and must be complete.
func goflags() string {
	flags := []string{"-mod=readonly"}
	for _, f := range strings.Fields(os.Getenv("GOFLAGS")) {
		if !strings.HasPrefix(f, "-mod=") {
			flags = append(flags, f)
		}
	}
	return strings.Join(flags, " ")
}

func (b *builder) logf(format string, args ...any) {
	fmt.Fprintf(b.opts.Progress, "e2e/cluster: "+format+"\n", args...)
}
