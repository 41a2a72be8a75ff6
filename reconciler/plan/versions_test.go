package plan_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
	"github.com/platzwart/platzwart/reconciler/upgrade"
)

// exampleWith is the example workplace with lines added to its spec.
func exampleWith(t *testing.T, spec string) string {
	t.Helper()
	doc := readExample(t)
	if !strings.Contains(doc, "\nspec:\n") {
		t.Fatal("the example has no spec: line")
	}
	return strings.Replace(doc, "\nspec:\n", "\nspec:\n"+spec, 1)
}

// releaseOf returns the release of a component in the only plan of plans.
func releaseOf(t *testing.T, plans []*plan.Plan, component string) *plan.Release {
	t.Helper()
	if len(plans) != 1 {
		t.Fatalf("%d plans, want 1", len(plans))
	}
	for _, r := range plans[0].Releases {
		if r.Component == component {
			return r
		}
	}
	t.Fatalf("no release of %s", component)
	return nil
}

// imageTag returns values.image.tag of a release.
func imageTag(r *plan.Release) any {
	img, _ := r.Values["image"].(map[string]any)
	return img["tag"]
}

// withoutVersions is a built-in component without its spec.versions block and the
// comment above it, as a repository's own component.
func withoutVersions(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../../components", name, "component.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	lines := strings.Split(string(data), "\n")
	var comment []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "  #") {
			comment = append(comment, l)
			continue
		}
		if l == "  versions:" {
			comment = nil
			for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "    ") {
				i++
			}
			continue
		}
		out = append(out, comment...)
		comment = nil
		out = append(out, l)
	}
	s := strings.Join(out, "\n")
	if s == string(data) {
		t.Fatalf("components/%s/component.yaml has no versions to remove", name)
	}
	return s
}

// TestVersionsChangeNoDigest: listing versions changes nothing a release renders
// while no pin selects an older one. The example's releases have the same digests
// with the built-in versions as with every versions block removed.
func TestVersionsChangeNoDigest(t *testing.T) {
	with, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": readExample(t)}))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"workplace.yaml": readExample(t)}
	versioned := 0
	for _, r := range with[0].Releases {
		if r.Version != "" {
			versioned++
			files["components/"+r.Component+"/component.yaml"] = withoutVersions(t, r.Component)
		}
	}
	if versioned < 4 {
		t.Fatalf("%d releases of the example have a version; want nextcloud, keycloak, synapse and postgresql at least", versioned)
	}
	without, _, err := buildAll(t, repoFS(files))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range with[0].Releases {
		w := without[0].Releases[i]
		if r.Name != w.Name || r.Digest != w.Digest || !reflect.DeepEqual(r.Images, w.Images) {
			t.Errorf("release %s: digest %s, images %v with versions; %s: %s, %v without", r.Name, r.Digest, r.Images, w.Name, w.Digest, w.Images)
		}
		if w.Version != "" {
			t.Errorf("release %s without versions has version %q", w.Name, w.Version)
		}
	}
}

func TestUnpinnedReleaseIsTheNewestVersion(t *testing.T) {
	plans, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": readExample(t)}))
	if err != nil {
		t.Fatal(err)
	}
	nc := releaseOf(t, plans, "nextcloud")
	// The newest version is spec.values as it is: the chart's default tag.
	if nc.Version != "34.0.4" || !nc.Risky || imageTag(nc) != nil || !reflect.DeepEqual(nc.Images, []string{"docker.io/library/nextcloud:34.0.4-apache"}) {
		t.Errorf("nextcloud: version %q risky %v tag %v images %v; want the newest, 34.0.4, risky, no tag, spec.images", nc.Version, nc.Risky, imageTag(nc), nc.Images)
	}
	if want := "builtin/components/nextcloud/component.yaml: Component \"nextcloud\": spec.versions"; nc.VersionOrigin != want {
		t.Errorf("origin %q, want %q", nc.VersionOrigin, want)
	}
	// 18.6 is risky: the step from 17 dumps and restores every consumer database.
	if pg := releaseOf(t, plans, "postgresql"); pg.Version != "18.6" || !pg.Risky {
		t.Errorf("postgresql: version %q risky %v; want 18.6, risky", pg.Version, pg.Risky)
	}
	if vk := releaseOf(t, plans, "valkey"); vk.Version != "9.1.1" || vk.Risky {
		t.Errorf("valkey: version %q risky %v; want 9.1.1, not risky", vk.Version, vk.Risky)
	}
}

// TestPinIsApplied pins nextcloud to its stepping stone: the release runs that
// version's image (rendered through the chart) and differs from the newest.
func TestPinIsApplied(t *testing.T) {
	plans, manifests, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": exampleWith(t, "  versions:\n    nextcloud: \"33.0.7\"\n")}))
	if err != nil {
		t.Fatal(err)
	}
	nc := releaseOf(t, plans, "nextcloud")
	if nc.Version != "33.0.7" || imageTag(nc) != "33.0.7-apache" || !reflect.DeepEqual(nc.Images, []string{"docker.io/library/nextcloud:33.0.7-apache"}) {
		t.Errorf("pinned nextcloud: version %q tag %v images %v", nc.Version, imageTag(nc), nc.Images)
	}
	if want := `repo/workplace.yaml: Workplace "demo": spec.versions.nextcloud`; nc.VersionOrigin != want {
		t.Errorf("origin %q, want %q", nc.VersionOrigin, want)
	}
	var rendered string
	for _, m := range manifests[0] {
		if m.Component == "nextcloud" {
			rendered = m.Manifest
		}
	}
	if !strings.Contains(rendered, "image: docker.io/library/nextcloud:33.0.7-apache") || strings.Contains(rendered, "34.0.4") {
		t.Errorf("the rendered nextcloud release does not run only 33.0.7-apache:\n%s", rendered)
	}
	unpinned, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": readExample(t)}))
	if err != nil {
		t.Fatal(err)
	}
	if releaseOf(t, unpinned, "nextcloud").Digest == nc.Digest {
		t.Error("the pinned release has the digest of the newest version")
	}
	// A pin of a component the workplace does not select is allowed, like its values.
	if _, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": workplace("  versions:\n    nextcloud: \"33.0.7\"\n  components:\n    files: none\n    office: none\n")})); err != nil {
		t.Errorf("a pin of an unselected component: %v", err)
	}
}

func TestPinRefused(t *testing.T) {
	cases := []struct {
		name, spec string
		want       string
	}{
		{
			name: "a version the catalog does not list",
			spec: "  versions:\n    nextcloud: \"35.0.0\"\n",
			want: `repo/workplace.yaml: Workplace "demo": spec.versions.nextcloud: component nextcloud lists no version "35.0.0" (known: 33.0.7, 34.0.4) (builtin/components/nextcloud/component.yaml: spec.versions)`,
		},
		{
			name: "a component without versions",
			spec: "  versions:\n    external-postgres: \"18.0.0\"\n",
			want: `repo/workplace.yaml: Workplace "demo": spec.versions.external-postgres: component external-postgres lists no versions (spec.versions), so it cannot be pinned to "18.0.0"`,
		},
		{
			name: "an unknown component",
			spec: "  versions:\n    nextclod: \"34.0.4\"\n",
			want: `repo/workplace.yaml: Workplace "demo": spec.versions.nextclod: unknown component "nextclod"`,
		},
		{
			name: "not a version",
			spec: "  versions:\n    nextcloud: latest\n",
			want: `repo/workplace.yaml: Workplace "demo": spec.versions.nextcloud: "latest" is not a version`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": exampleWith(t, tc.spec)}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant %q", err, tc.want)
			}
		})
	}
}

// TestReleasePath: the steps of an upgrade path are releases at each version; a
// step's release is the release a pin of that version plans, with the target's pod
// annotations.
func TestReleasePath(t *testing.T) {
	plans, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": readExample(t)}))
	if err != nil {
		t.Fatal(err)
	}
	nc := releaseOf(t, plans, "nextcloud")
	pinned, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": exampleWith(t, "  versions:\n    nextcloud: \"33.0.7\"\n")}))
	if err != nil {
		t.Fatal(err)
	}
	stone := releaseOf(t, pinned, "nextcloud")

	steps, err := nc.Path("32.0.5")
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[0].Version != "33.0.7" || steps[1] != nc {
		t.Fatalf("path from 32.0.5: %v; want 33.0.7, then the planned release", stepVersions(steps))
	}
	if steps[0].Digest != stone.Digest || !reflect.DeepEqual(steps[0].Values, stone.Values) || !reflect.DeepEqual(steps[0].Images, stone.Images) || !steps[0].Risky {
		t.Errorf("step 33.0.7 (digest %s, images %v) differs from the release pinned to 33.0.7 (digest %s, images %v)", steps[0].Digest, steps[0].Images, stone.Digest, stone.Images)
	}

	// Pod annotations the reconciler puts on the target go to every step.
	annotated := *nc
	annotated.PodAnnotations = map[string]string{"platzwart.io/secret-versions": "sha256:1"}
	steps, err = annotated.Path("32.0.5")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(steps[0].PodAnnotations, annotated.PodAnnotations) || steps[0].Digest == stone.Digest {
		t.Errorf("step 33.0.7: pod annotations %v, digest %s; want the target's annotations and a digest covering them", steps[0].PodAnnotations, steps[0].Digest)
	}
	if d, err := plan.Digest(steps[0]); err != nil || d != steps[0].Digest {
		t.Errorf("step digest %s, recomputed %s (%v)", steps[0].Digest, d, err)
	}

	for deployed, want := range map[string]int{"": 0, "34.0.4": 0, "33.0.7": 1, "33.0.2": 1} {
		steps, err := nc.Path(deployed)
		if err != nil || len(steps) != want {
			t.Errorf("path from %q: %v (%v); want %d steps", deployed, stepVersions(steps), err, want)
		}
	}
}

func TestReleasePathRefusals(t *testing.T) {
	plans, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": readExample(t)}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = releaseOf(t, plans, "nextcloud").Path("31.0.9")
	var noPath *upgrade.NoPathError
	want := `builtin/components/nextcloud/component.yaml: Component "nextcloud": spec.versions: component nextcloud: no upgrade path from 31.0.9 to 34.0.4: 33.0.7 accepts upgrades only from ">=32.0.0"`
	if !errors.As(err, &noPath) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("path from 31.0.9: %v\nwant a *upgrade.NoPathError starting %q", err, want)
	}
	// 17 → 18 is listed (dump and restore); 16 is not.
	_, err = releaseOf(t, plans, "postgresql").Path("16.4")
	if !errors.As(err, &noPath) || !strings.Contains(err.Error(), `accepts upgrades only from ">=17.0.0"`) {
		t.Errorf("postgresql from 16.4: %v; want a *upgrade.NoPathError", err)
	}

	pinned, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": exampleWith(t, "  versions:\n    nextcloud: \"33.0.7\"\n")}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = releaseOf(t, pinned, "nextcloud").Path("34.0.4")
	var down *upgrade.DowngradeError
	want = `repo/workplace.yaml: Workplace "demo": spec.versions.nextcloud: component nextcloud: downgrade from 34.0.4 to 33.0.7 refused`
	if !errors.As(err, &down) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("path from 34.0.4 to the pin 33.0.7: %v\nwant a *upgrade.DowngradeError starting %q", err, want)
	}
	unversioned, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": readExample(t), "components/valkey/component.yaml": withoutVersions(t, "valkey")}))
	if err != nil {
		t.Fatal(err)
	}
	if steps, err := releaseOf(t, unversioned, "valkey").Path("9.0.0"); err != nil || steps != nil {
		t.Errorf("a component without versions has no path: %v, %v", stepVersions(steps), err)
	}
}

// migrationComponent is the built-in nextcloud with a migration on its newest version.
func migrationComponent(t *testing.T, job string) string {
	t.Helper()
	return componentOverride(t, "nextcloud", `    - version: "34.0.4"
      from: ">=33.0.0"
      risky: true
`, `    - version: "34.0.4"
      from: ">=33.0.0"
      risky: true
      migrations:
        - name: add-missing-indices
          phase: post
          job: |
`+job)
}

func TestMigrationsAreRendered(t *testing.T) {
	job := `            backoffLimit: 0
            template:
              spec:
                restartPolicy: Never
                containers:
                  - name: occ
                    image: {{ printf "%s/library/nextcloud:%s-apache" (.Images.Registry | default "docker.io") .Version | quote }}
                    args: [db:add-missing-indices, --release={{ .Release.Name }}]
`
	plans, _, err := buildAll(t, repoFS(map[string]string{
		"workplace.yaml":                      readExample(t),
		"components/nextcloud/component.yaml": migrationComponent(t, job),
	}))
	if err != nil {
		t.Fatal(err)
	}
	nc := releaseOf(t, plans, "nextcloud")
	if len(nc.Migrations) != 1 {
		t.Fatalf("migrations %+v, want one", nc.Migrations)
	}
	m := nc.Migrations[0]
	c := m.Job.Template.Spec.Containers
	if m.Name != "add-missing-indices" || m.Phase != catalog.PhasePost || m.Timeout != 10*time.Minute || len(c) != 1 ||
		c[0].Image != "docker.io/library/nextcloud:34.0.4-apache" || !reflect.DeepEqual(c[0].Args, []string{"db:add-missing-indices", "--release=demo-nextcloud"}) {
		t.Errorf("migration %+v", m)
	}
	steps, err := nc.Path("33.0.7")
	if err != nil || len(steps) != 1 || len(steps[0].Migrations) != 1 {
		t.Errorf("the step to 34.0.4 carries its migration: %v, %v", stepVersions(steps), err)
	}

	_, _, err = buildAll(t, repoFS(map[string]string{
		"workplace.yaml":                      readExample(t),
		"components/nextcloud/component.yaml": migrationComponent(t, "            template: {spec: {containerz: []}}\n"),
	}))
	for _, w := range []string{`repo/workplace.yaml: Workplace "demo": spec.components.files: component "nextcloud": repo/components/nextcloud/component.yaml: spec.versions[1].migrations[0].job: not a batch/v1 JobSpec`, "containerz"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("a migration that is no JobSpec: %v; want %q", err, w)
		}
	}
}

func stepVersions(steps []*plan.Release) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.Version)
	}
	return out
}

// TestRenderedStepRuns: an older step renders through the chart like any release.
func TestRenderedStepRuns(t *testing.T) {
	plans, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": readExample(t)}))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := releaseOf(t, plans, "nextcloud").Path("32.0.5")
	if err != nil {
		t.Fatal(err)
	}
	m, err := render.Release(context.Background(), steps[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Manifest, "image: docker.io/library/nextcloud:33.0.7-apache") {
		t.Errorf("the step to 33.0.7 does not run its image:\n%s", m.Manifest)
	}
}

// TestBackupTargetFromTheProfile: the profile's spec.backups reaches every release
// (minikube: 2Gi), and a profile extending it overrides only what it sets.
func TestBackupTargetFromTheProfile(t *testing.T) {
	plans, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": readExample(t)}))
	if err != nil {
		t.Fatal(err)
	}
	if b := releaseOf(t, plans, "nextcloud").Backups; b.Size != "2Gi" || b.StorageClassName != "" {
		t.Errorf("minikube's backup target %+v, want size 2Gi and the default class", b)
	}
	plans, _, err = buildAll(t, repoFS(map[string]string{
		"workplace.yaml":       strings.Replace(readExample(t), "profile: minikube", "profile: laptop", 1),
		"profiles/laptop.yaml": "apiVersion: platzwart.io/v1alpha1\nkind: Profile\nmetadata:\n  name: laptop\nspec:\n  extends: minikube\n  backups:\n    storageClassName: fast\n",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if b := releaseOf(t, plans, "nextcloud").Backups; b.Size != "2Gi" || b.StorageClassName != "fast" {
		t.Errorf("extended backup target %+v, want size 2Gi from minikube and class fast", b)
	}
}
