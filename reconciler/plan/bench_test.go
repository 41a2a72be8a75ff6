package plan_test

import (
	"context"
	"testing"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
)

// BenchmarkPlan measures loading the example repository (catalog included) and
// planning it.
func BenchmarkPlan(b *testing.B) {
	for b.Loop() {
		repo, err := load.Dir(exampleDir, platzwart.Builtin(), "")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := plan.Build(repo.Workplaces[0], repo.Catalog); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlanAndRender measures load + plan + render of every release of the example.
func BenchmarkPlanAndRender(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		repo, err := load.Dir(exampleDir, platzwart.Builtin(), "")
		if err != nil {
			b.Fatal(err)
		}
		p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := render.Plan(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}
