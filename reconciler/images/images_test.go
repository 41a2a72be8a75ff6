package images

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"helm.sh/helm/v3/pkg/release"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
)

const mirror = "registry.example.org/mirror"

// example renders examples/ with the given video component and registry.
func example(t *testing.T, video, registry string) []*render.Workplace {
	t.Helper()
	var all []*render.Workplace
	dirs, err := filepath.Glob("../../examples/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no example in examples/: %v", err)
	}
	for _, dir := range dirs {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			continue
		}
		repo, err := load.Dir(dir, platzwart.Builtin(), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range repo.Workplaces {
			if _, ok := w.Spec.Components["video"]; ok && video != "" {
				w.Spec.Components["video"] = video
			}
			if video == "bigbluebutton" {
				// Without the example's existing server: the BigBlueButton server
				// runs in the cluster, so every image of the component is rendered.
				delete(w.Spec.Values, "bigbluebutton")
			}
			if registry != "" {
				w.Spec.Images = &v1alpha1.Images{Registry: registry}
			}
		}
		ws, err := render.Repository(context.Background(), repo, render.Options{})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ws...)
	}
	return all
}

// imageLine finds image references in rendered YAML by their text, independently of
// how List walks the objects.
var imageLine = regexp.MustCompile(`(?m)^\s*(?:-\s+)?image:\s*["']?([^"'\s]+)["']?\s*$`)

// scanned returns every image reference written in the rendered text (manifests and
// hooks), fully qualified, and how many times one is written.
func scanned(t *testing.T, ws []*render.Workplace) ([]string, int) {
	t.Helper()
	seen := map[string]bool{}
	n := 0
	for _, w := range ws {
		for _, m := range w.Manifests {
			for _, s := range imageLine.FindAllStringSubmatch(string(m.Bytes()), -1) {
				named, err := reference.ParseNormalizedNamed(s[1])
				if err != nil {
					t.Fatalf("release %s: %q: %v", m.Release, s[1], err)
				}
				seen[named.String()] = true
				n++
			}
		}
	}
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, n
}

func references(list []Image) []string {
	out := make([]string, 0, len(list))
	for _, img := range list {
		out = append(out, img.Reference)
	}
	return out
}

// rewrite applies the registry rewrite the charts do to a catalog reference: the
// registry (first path element) is replaced.
func rewrite(ref, registry string) string {
	if registry == "" {
		return ref
	}
	_, rest, _ := strings.Cut(ref, "/")
	return registry + "/" + rest
}

// TestListIsEveryImageOfTheRenderedExample renders the examples with Jitsi and with
// BigBlueButton (its server in the cluster), with and without a registry mirror: List returns exactly the images
// written in the rendered manifests and hooks; hook images are found and marked; with
// a mirror every image is under it; and every image a selected component declares in
// the catalog (spec.images, rewritten to the mirror) is in the list, and nothing
// else is.
func TestListIsEveryImageOfTheRenderedExample(t *testing.T) {
	for _, video := range []string{"jitsi", "bigbluebutton"} {
		for _, registry := range []string{"", mirror} {
			t.Run(video+"/"+registry, func(t *testing.T) {
				ws := example(t, video, registry)
				list, err := List(ws)
				if err != nil {
					t.Fatal(err)
				}
				got := references(list)
				want, written := scanned(t, ws)
				if !slices.Equal(got, want) {
					t.Errorf("List:\n  %s\nthe rendered text:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
				uses := 0
				for _, img := range list {
					uses += len(img.Uses)
				}
				if uses != written {
					t.Errorf("List found %d containers, the rendered text names an image %d times", uses, written)
				}
				hook := false
				for _, img := range list {
					if registry != "" && !strings.HasPrefix(img.Reference, registry+"/") {
						t.Errorf("%s is not under the mirror %s", img.Reference, registry)
					}
					for _, u := range img.Uses {
						hook = hook || u.Hook
						if u.Container == "" || u.Object == "" || u.Release == "" || u.Workplace == "" {
							t.Errorf("%s: use %+v lacks where", img.Reference, u)
						}
					}
				}
				if !hook {
					t.Error("no image found in a hook (keycloak-config-cli runs as a hook Job)")
				}
				declared := map[string]string{}
				for _, w := range ws {
					for _, rel := range w.Plan.Releases {
						for _, ref := range rel.Images {
							declared[rewrite(ref, registry)] = rel.Component
						}
					}
				}
				for ref, comp := range declared {
					if !slices.Contains(got, ref) {
						t.Errorf("component %s declares %s (spec.images), which no rendered container runs", comp, ref)
					}
				}
				for _, img := range list {
					if _, ok := declared[img.Reference]; !ok {
						t.Errorf("%s runs (components %v) but no component declares it in spec.images", img.Reference, img.Components())
					}
				}
			})
		}
	}
}

// TestParse qualifies references the way the container runtime does and splits tag
// and digest.
func TestParse(t *testing.T) {
	const d = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	for in, want := range map[string]Image{
		"nginx:1.27":                       {Reference: "docker.io/library/nginx:1.27", Repository: "docker.io/library/nginx", Tag: "1.27"},
		"ghcr.io/jitsi/web:stable-1@" + d:  {Reference: "ghcr.io/jitsi/web:stable-1@" + d, Repository: "ghcr.io/jitsi/web", Tag: "stable-1", Digest: d},
		"registry.local:5000/a/b@" + d:     {Reference: "registry.local:5000/a/b@" + d, Repository: "registry.local:5000/a/b", Digest: d},
		"quay.io/keycloak/keycloak:26.7.4": {Reference: "quay.io/keycloak/keycloak:26.7.4", Repository: "quay.io/keycloak/keycloak", Tag: "26.7.4"},
	} {
		got, err := parse(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got.Reference != want.Reference || got.Repository != want.Repository || got.Tag != want.Tag || got.Digest != want.Digest {
			t.Errorf("%s: %+v, want %+v", in, *got, want)
		}
	}
	if _, err := parse("Not A Reference"); err == nil {
		t.Error("an invalid reference parsed")
	}
}

// TestListFindsEveryPodSpec: containers, init containers and ephemeral containers of
// Pods, Deployments, Jobs and CronJobs, in manifests and hooks.
func TestListFindsEveryPodSpec(t *testing.T) {
	manifest := `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers: [{name: init, image: "example.org/init:1"}]
  containers: [{name: main, image: example.org/pod:1}]
  ephemeralContainers: [{name: debug, image: example.org/debug:1}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec: {template: {spec: {containers: [{name: app, image: example.org/app:1}]}}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: cron, image: example.org/cron:1}]}}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-pod}
data: {image: example.org/nothing:1}
`
	ws := []*render.Workplace{{
		Plan: &plan.Plan{Namespace: "demo", Workplace: "demo"},
		Manifests: []*render.Manifest{{Release: "demo-x", Component: "x", Manifest: manifest, Hooks: []*release.Hook{{
			Path:     "x/templates/job.yaml",
			Manifest: "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec: {template: {spec: {containers: [{name: job, image: example.org/job:1}]}}}\n",
		}}}},
	}}
	list, err := List(ws)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"example.org/app:1", "example.org/cron:1", "example.org/debug:1", "example.org/init:1", "example.org/job:1", "example.org/pod:1"}
	if got := references(list); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, img := range list {
		if hook := img.Reference == "example.org/job:1"; img.Uses[0].Hook != hook {
			t.Errorf("%s: hook %v, want %v", img.Reference, img.Uses[0].Hook, hook)
		}
	}
}

// TestWithUpgradePathsAddsEveryOlderVersion: besides what runs now, the list holds
// the images of every older version the selected components list (Nextcloud's
// stepping stone in the built-in catalog), rendered like the release so the mirror
// rewrite applies, and marked with their version; the images that run now are
// unchanged.
func TestWithUpgradePathsAddsEveryOlderVersion(t *testing.T) {
	for _, registry := range []string{"", mirror} {
		t.Run(registry, func(t *testing.T) {
			ws := example(t, "jitsi", registry)
			now, err := List(ws)
			if err != nil {
				t.Fatal(err)
			}
			all, err := WithUpgradePaths(t.Context(), ws)
			if err != nil {
				t.Fatal(err)
			}
			got := references(all)
			for _, ref := range references(now) {
				if !slices.Contains(got, ref) {
					t.Errorf("%s runs now but is not in the list with upgrade paths", ref)
				}
			}
			older := 0
			for _, w := range ws {
				for _, rel := range w.Plan.Releases {
					for _, step := range rel.Earlier() {
						for _, ref := range step.Images {
							older++
							want := rewrite(ref, registry)
							i := slices.IndexFunc(all, func(img Image) bool { return img.Reference == want })
							if i < 0 {
								t.Errorf("%s of %s at version %s is missing", want, rel.Component, step.Version)
								continue
							}
							if !slices.ContainsFunc(all[i].Uses, func(u Use) bool { return u.Version == step.Version && u.Component == rel.Component }) {
								t.Errorf("%s: uses %+v, want one marked with version %s", want, all[i].Uses, step.Version)
							}
						}
					}
				}
			}
			if older == 0 {
				t.Fatal("the example's components list no older version: nothing was tested")
			}
			if len(all) <= len(now) {
				t.Errorf("%d images with upgrade paths, %d without: want more", len(all), len(now))
			}
		})
	}
}
