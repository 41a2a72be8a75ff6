//go:build unix

package render

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/postrender"
)

// scaleWorkplace is a workplace of e2e/scale's BenchmarkController: the minikube
// profile reduced to identity and its infrastructure (postgresql, valkey, keycloak).
const scaleWorkplace = `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: team-0001}
spec:
  domain: team-0001.192.168.49.2.sslip.io
  profile: minikube
  components: {video: none, office: none, chat: none, files: none, portal: none, mail: none}
`

// scalePlan plans scaleWorkplace with the built-in catalog.
func scalePlan(b *testing.B) *plan.Plan {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(scaleWorkplace), 0o644); err != nil {
		b.Fatal(err)
	}
	repo, err := load.Dir(dir, platzwart.Builtin(), "")
	if err != nil {
		b.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		b.Fatal(err)
	}
	var components []string
	for _, rel := range p.Releases {
		components = append(components, rel.Component)
	}
	slices.Sort(components)
	if got := strings.Join(components, ", "); got != "keycloak, postgresql, valkey" {
		b.Fatalf("the scale workplace plans %s; want keycloak, postgresql, valkey", got)
	}
	return p
}

// BenchmarkPreflightRender measures what the preflight spends on rendering and the
// guards for one workplace of e2e/scale's benchmark when one of its three releases
// changes (valkey, as in the converge): every release rendered (as the preflight
// did before it took unchanged releases from Helm's storage, and as Reconciler.Check
// still does), only valkey rendered with the other two stored, and the guards alone
// over three manifests.
func BenchmarkPreflightRender(b *testing.B) {
	ctx := context.Background()
	p := scalePlan(b)
	ms, err := PlanWith(ctx, p, Options{})
	if err != nil {
		b.Fatal(err)
	}
	stored := map[string]Stored{}
	for _, m := range ms {
		if m.Component != "valkey" {
			stored[m.Release] = Stored{Manifest: m.Manifest, Hooks: m.Hooks}
		}
	}
	b.Run("all-rendered", func(b *testing.B) {
		measure(b, func() error { _, err := PlanWith(ctx, p, Options{}); return err })
	})
	b.Run("valkey-rendered-two-stored", func(b *testing.B) {
		measure(b, func() error { _, err := PlanReusing(ctx, p, stored, Options{}); return err })
	})
	b.Run("guards-only", func(b *testing.B) {
		measure(b, func() error { return Check(p, ms, Options{}) })
	})
}

// BenchmarkRenderParts splits the render of each release of the scale workplace
// into its parts, to see what sharing rendering between workplaces could save
// (docs/adr/0016-rendering-not-shared-between-workplaces.md):
//
//	release     Release: all of the below
//	helm        Helm's client-only install (values, engine, sorting, post-renderer)
//	values      coalescing the values with the chart's and validating the schema
//	coalesce    coalescing only (values less coalesce: the schema, which Helm
//	            compiles on every render)
//	funcs       the template function map and an empty template set with it
//	parse       funcs, then parsing every template of the chart: all the engine
//	            does that does not depend on the values
//	engine      Helm's engine: parse, then execute every template (execution is
//	            engine less parse)
//	sort        Helm's SortManifests of the executed templates into one document
//	postrender  the kustomize post-renderer (keep volumes, pod annotations; the
//	            scale workplace has no patches)
//	hooks       checkHookVolumes
//	size        checkSize: the release encoded as Helm's storage encodes it
//	decode      decoding the manifest and hooks for the guards (Manifest.Objects)
func BenchmarkRenderParts(b *testing.B) {
	ctx := context.Background()
	p := scalePlan(b)
	kv, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		b.Fatal(err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	for _, rel := range p.Releases {
		ch := rel.Chart.Helm()
		opts := chartutil.ReleaseOptions{Name: rel.Name, Namespace: rel.Namespace, Revision: 1, IsInstall: true}
		vals, err := chartutil.ToRenderValuesWithSchemaValidation(ch, rel.Values, opts, caps, false)
		if err != nil {
			b.Fatal(err)
		}
		files, err := engine.Engine{}.Render(ch, vals)
		if err != nil {
			b.Fatal(err)
		}
		for name := range files {
			if strings.HasSuffix(name, "NOTES.txt") {
				delete(files, name)
			}
		}
		sorted, err := sortedDocument(files)
		if err != nil {
			b.Fatal(err)
		}
		out, err := dryRun(ctx, rel)
		if err != nil {
			b.Fatal(err)
		}
		m := &Manifest{Release: rel.Name, Component: rel.Component, Manifest: out.Manifest, Hooks: out.Hooks}
		post := &postrender.Kustomize{Patches: rel.Patches, Where: rel.PatchesOrigin, PodAnnotations: rel.PodAnnotations}
		templates := chartTemplates(ch)
		b.Logf("%s: %d templates (%d bytes), %d objects rendered (%d bytes of manifest, %d hooks)",
			rel.Component, len(templates), templateBytes(templates), len(files), len(out.Manifest), len(out.Hooks))

		parts := []struct {
			name string
			run  func() error
		}{
			{"release", func() error { _, err := Release(ctx, rel); return err }},
			{"helm", func() error { _, err := dryRun(ctx, rel); return err }},
			{"values", func() error {
				_, err := chartutil.ToRenderValuesWithSchemaValidation(ch, rel.Values, opts, caps, false)
				return err
			}},
			{"coalesce", func() error {
				_, err := chartutil.ToRenderValuesWithSchemaValidation(ch, rel.Values, opts, caps, true)
				return err
			}},
			{"funcs", func() error { template.New("gotpl").Funcs(helmFuncMap()); return nil }},
			{"parse", func() error { return parseTemplates(templates) }},
			{"engine", func() error { _, err := (engine.Engine{}).Render(ch, vals); return err }},
			{"sort", func() error { _, err := sortedDocument(files); return err }},
			{"postrender", func() error { _, err := post.Run(bytes.NewBuffer(sorted)); return err }},
			{"hooks", func() error { return checkHookVolumes(out.Hooks) }},
			{"size", func() error { _, err := checkSize(out); return err }},
			{"decode", func() error { _, err := m.Objects(); return err }},
		}
		for _, part := range parts {
			b.Run(rel.Component+"/"+part.name, func(b *testing.B) { measure(b, part.run) })
		}
	}
}

// measure runs op in the benchmark's loop and reports, besides time and
// allocations, the process's CPU time per op (user and system, garbage collection
// included): on two cores shared with other work it varies far less than the wall
// clock.
func measure(b *testing.B, op func() error) {
	b.ReportAllocs()
	start := cpuTime(b)
	for b.Loop() {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the CPU time the process has used (getrusage: hence the file's unix
// build constraint).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// chartTemplate is one template of a chart, named as Helm's engine names it.
type chartTemplate struct {
	name string
	data []byte
}

// chartTemplates are the templates Helm's engine parses for ch (engine.allTemplates).
func chartTemplates(ch *chart.Chart) []chartTemplate {
	var out []chartTemplate
	for _, dep := range ch.Dependencies() {
		out = append(out, chartTemplates(dep)...)
	}
	library := strings.EqualFold(ch.Metadata.Type, "library")
	for _, t := range ch.Templates {
		if t == nil || library && !strings.HasPrefix(path.Base(t.Name), "_") {
			continue
		}
		out = append(out, chartTemplate{name: path.Join(ch.ChartFullPath(), t.Name), data: t.Data})
	}
	return out
}

func templateBytes(ts []chartTemplate) int {
	n := 0
	for _, t := range ts {
		n += len(t.data)
	}
	return n
}

// helmFuncMap is a function map with the names Helm's engine defines (engine.funcMap
// and initFunMap, which are not exported): sprig's, less env and expandenv, and
// Helm's own. Only the names matter to parsing; building sprig's map is most of the
// cost, as in Helm.
func helmFuncMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	placeholder := func(...any) (any, error) { return nil, nil }
	for _, name := range []string{"toToml", "fromToml", "toYaml", "toYamlPretty", "fromYaml", "fromYamlArray",
		"toJson", "fromJson", "fromJsonArray", "include", "tpl", "required", "fail", "lookup", "getHostByName"} {
		f[name] = placeholder
	}
	return f
}

// parseTemplates does what Helm's engine does before it executes anything: a
// template set with the function map, every template parsed into it.
func parseTemplates(ts []chartTemplate) error {
	t := template.New("gotpl")
	t.Option("missingkey=zero")
	t.Funcs(helmFuncMap())
	for _, tpl := range ts {
		if _, err := t.New(tpl.name).Parse(string(tpl.data)); err != nil {
			return fmt.Errorf("parsing %s: %w", tpl.name, err)
		}
	}
	return nil
}

// sortedDocument is what Helm's renderResources does with the executed templates
// before the post-renderer: SortManifests (which decodes each document's head),
// then one YAML stream in install order.
func sortedDocument(files map[string]string) ([]byte, error) {
	_, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	return b.Bytes(), nil
}
