package render

import (
	"context"
	"errors"
	"testing"

	"github.com/platzwart/platzwart/reconciler/plan"
)

// TestPlanStopsWhenCancelled: Ctrl-C while a workplace renders stops between releases
// with the context's error instead of rendering the rest.
func TestPlanStopsWhenCancelled(t *testing.T) {
	cm := map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"}
	p := &plan.Plan{Workplace: "demo", Namespace: "demo", File: "workplace.yaml",
		Releases: []*plan.Release{testRelease(cm, nil), testRelease(cm, nil)}}
	if _, err := PlanWith(context.Background(), p, Options{}); err != nil {
		t.Fatalf("render: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ms, err := PlanWith(ctx, p, Options{})
	if !errors.Is(err, context.Canceled) || ms != nil {
		t.Fatalf("render after Ctrl-C: %d manifests, %v; want none and context.Canceled", len(ms), err)
	}
}
