package plan_test

import (
	"testing"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// TestChartsLoadOncePerCatalog: plans built from one catalog (one Git revision, as
// the controller keeps it) share each loaded chart; a catalog loaded again loads
// its charts again.
func TestChartsLoadOncePerCatalog(t *testing.T) {
	repo, err := load.Dir(exampleDir, platzwart.Builtin(), "")
	if err != nil {
		t.Fatal(err)
	}
	first, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	second, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	again, err := load.Dir(exampleDir, platzwart.Builtin(), "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := plan.Build(again.Workplaces[0], again.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	for i, rel := range first.Releases {
		if rel.Chart == nil {
			continue
		}
		if second.Releases[i].Chart != rel.Chart {
			t.Errorf("release %s: a second plan from the same catalog loaded chart %s again", rel.Name, rel.Chart.File)
		}
		if other.Releases[i].Chart == rel.Chart {
			t.Errorf("release %s: a plan from another catalog got the same chart object", rel.Name)
		}
	}
}

// BenchmarkPlanSharedCatalog measures planning the example with a catalog loaded
// once, as the controller plans every workplace of a revision; BenchmarkPlan loads
// the repository and catalog each time.
func BenchmarkPlanSharedCatalog(b *testing.B) {
	repo, err := load.Dir(exampleDir, platzwart.Builtin(), "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := plan.Build(repo.Workplaces[0], repo.Catalog); err != nil {
			b.Fatal(err)
		}
	}
}
