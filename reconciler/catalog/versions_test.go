package catalog_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/platzwart/platzwart/reconciler/catalog"
)

// versionedComponent is a component x of capability files with the given
// spec.versions block (indented under spec) and a chart charts/x.
func versionedComponent(versions string) fstest.MapFS {
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Component
metadata: {name: x}
spec:
  capability: files
  licence: MIT
  url: https://example.org
  chart: charts/x
  images: [docker.io/library/x:2.0.0]
  values: |
    image: {tag: "2.0.0"}
` + versions
	return fstest.MapFS{
		"capabilities/files.yaml":     &fstest.MapFile{Data: []byte(filesCapability)},
		"components/x/component.yaml": &fstest.MapFile{Data: []byte(doc)},
		"charts/x/Chart.yaml":         &fstest.MapFile{Data: []byte("apiVersion: v2\nname: x\nversion: 0.1.0\n")},
		"charts/old/Chart.yaml":       &fstest.MapFile{Data: []byte("apiVersion: v2\nname: x\nversion: 0.0.9\n")},
	}
}

func TestVersionsValid(t *testing.T) {
	c, err := catalog.Load(catalog.Layer{FS: versionedComponent(`  versions:
    - version: "1.0.0"
      chart: charts/old
      images: [docker.io/library/x:1.0.0]
      values: |
        image: {tag: "1.0.0"}
    - version: v1.1.0
      mandatory: true
      images: [docker.io/library/x:1.1.0]
      values: |
        image: {tag: "1.1.0"}
    - version: "2.0"
      from: ">=1.1.0 <2.0.0"
      risky: true
      images: [docker.io/library/x:2.0.0]
      migrations:
        - name: reindex
          phase: post
          timeout: 30m
          job: |
            template:
              spec:
                restartPolicy: Never
                containers:
                  - {name: reindex, image: "docker.io/library/x:2.0.0", args: [reindex, {{ .Release.Name | quote }}]}
`), Label: "repo"})
	if err != nil {
		t.Fatal(err)
	}
	x := c.Components["x"]
	if got := x.Newest(); got != "2.0" {
		t.Errorf("Newest() = %q, want 2.0", got)
	}
	if got := x.VersionIndex("1.1.0"); got != 1 {
		t.Errorf("VersionIndex(1.1.0) = %d, want 1 (listed as v1.1.0)", got)
	}
	if got := x.VersionIndex("2.0.0"); got != 2 {
		t.Errorf("VersionIndex(2.0.0) = %d, want 2 (listed as 2.0)", got)
	}
	if got := x.VersionIndex("3.0.0"); got != -1 {
		t.Errorf("VersionIndex(3.0.0) = %d, want -1", got)
	}
}

func TestVersionsRefused(t *testing.T) {
	const prefix = `repo/components/x/component.yaml: Component "x": `
	cases := []struct {
		name     string
		versions string
		want     []string // each must be in the error, after the prefix
	}{
		{
			name: "bad constraint",
			versions: `  versions:
    - {version: "1.0.0", images: [docker.io/library/x:1.0.0]}
    - {version: "2.0.0", from: ">= one"}
`,
			want: []string{`spec.versions[1].from: ">= one" is not a version constraint`},
		},
		{
			name: "unknown phase",
			versions: `  versions:
    - version: "2.0.0"
      migrations: [{name: m, phase: during, job: "template: {}"}]
`,
			want: []string{`spec.versions[0].migrations[0].phase: unknown phase "during" (known: pre, post)`},
		},
		{
			name: "duplicate version, spelt differently",
			versions: `  versions:
    - {version: "2.0.0", images: [docker.io/library/x:1.0.0]}
    - {version: v2.0.0}
`,
			want: []string{`spec.versions[1].version: version "v2.0.0" is listed twice (also spec.versions[0])`},
		},
		{
			name: "unsorted versions",
			versions: `  versions:
    - {version: "1.5.0", images: [docker.io/library/x:1.5.0]}
    - {version: "1.0.0", images: [docker.io/library/x:1.0.0]}
    - {version: "2.0.0"}
`,
			want: []string{`spec.versions[1].version: versions are listed oldest first: "1.0.0" is older than "1.5.0" (spec.versions[0])`},
		},
		{
			name:     "not a version",
			versions: "  versions:\n    - {version: latest}\n",
			want:     []string{`spec.versions[0].version: "latest" is not a version`},
		},
		{
			name:     "build metadata does not fit a label",
			versions: "  versions:\n    - {version: 2.0.0+build.7}\n",
			want:     []string{`spec.versions[0].version: "2.0.0+build.7" is not a version`},
		},
		{
			name: "values on the newest version",
			versions: `  versions:
    - version: "2.0.0"
      values: "image: {tag: other}"
`,
			want: []string{"spec.versions[0].values: the newest version is what spec.values renders"},
		},
		{
			name:     "other images on the newest version",
			versions: "  versions:\n    - {version: \"2.0.0\", images: [docker.io/library/x:1.9.0]}\n",
			want:     []string{"spec.versions[0].images: the newest version runs spec.images"},
		},
		{
			name:     "another chart on the newest version",
			versions: "  versions:\n    - {version: \"2.0.0\", chart: charts/old}\n",
			want:     []string{`spec.versions[0].chart: the newest version uses spec.chart ("charts/x")`},
		},
		{
			name: "an older version without images",
			versions: `  versions:
    - {version: "1.0.0", values: "image: {tag: \"1.0.0\"}"}
    - {version: "2.0.0"}
`,
			want: []string{"spec.versions[0].images: list every image this version runs"},
		},
		{
			name: "an older version with a floating image and a missing chart",
			versions: `  versions:
    - {version: "1.0.0", chart: charts/gone, images: [docker.io/library/x:latest]}
    - {version: "2.0.0"}
`,
			want: []string{`spec.versions[0].images[0]: "docker.io/library/x:latest" uses the floating tag`, `spec.versions[0].chart: chart "charts/gone" not found`},
		},
		{
			name: "a broken values template",
			versions: `  versions:
    - {version: "1.0.0", images: [docker.io/library/x:1.0.0], values: "image: {{ .Nope"}
    - {version: "2.0.0"}
`,
			want: []string{"spec.versions[0].values: template:"},
		},
		{
			name: "migrations: bad name, duplicate, no job, negative timeout, broken template",
			versions: `  versions:
    - version: "2.0.0"
      migrations:
        - {name: Re_Index, phase: pre, job: "template: {}"}
        - {name: a, phase: post, job: "template: {}"}
        - {name: a, phase: post, job: "template: {}"}
        - {name: b, phase: post, job: "  "}
        - {name: c, phase: post, timeout: -1m, job: "{{ end }}"}
`,
			want: []string{
				"spec.versions[0].migrations[0].name: a lowercase RFC 1123 label",
				`spec.versions[0].migrations[2].name: migration "a" is declared twice (also spec.versions[0].migrations[1])`,
				"spec.versions[0].migrations[3].job: required (a template of a batch/v1 JobSpec)",
				"spec.versions[0].migrations[4].timeout: must be positive",
				"spec.versions[0].migrations[4].job: template:",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := catalog.Load(catalog.Layer{FS: versionedComponent(tc.versions), Label: "repo"})
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), prefix+w) {
					t.Errorf("error lacks %q:\n%v", prefix+w, err)
				}
			}
		})
	}
}

func TestVersionsNeedAChart(t *testing.T) {
	fsys := fstest.MapFS{"components/x/component.yaml": &fstest.MapFile{Data: []byte(`apiVersion: platzwart.io/v1alpha1
kind: Component
metadata: {name: x}
spec:
  capability: postgres
  licence: PostgreSQL
  url: https://example.org
  exports: "{host: db, port: 5432}"
  versions: [{version: "18.0"}]
`)}}
	_, err := catalog.Load(catalog.Layer{FS: fsys, Label: "repo"})
	want := `repo/components/x/component.yaml: Component "x": spec.versions: a component without a chart has nothing to upgrade`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
}
