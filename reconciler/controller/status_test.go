package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// deployment is a Deployment as the API server returns it, with a pod template and
// managed fields statusOnly drops.
func deployment(generation, observed int64, replicas, available int64) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata": map[string]any{
			"name": "demo-valkey", "namespace": "demo", "generation": generation,
			"labels":        map[string]any{"app.kubernetes.io/instance": "demo-valkey"},
			"annotations":   map[string]any{helmReleaseName: "demo-valkey", helmReleaseNamespace: "demo", "deployment.kubernetes.io/revision": "3"},
			"managedFields": []any{map[string]any{"manager": "helm"}},
		},
		"spec": map[string]any{
			"replicas": replicas,
			"selector": map[string]any{"matchLabels": map[string]any{"app": "valkey"}},
			"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "valkey", "image": "valkey:8"}}}},
		},
		"status": map[string]any{
			"observedGeneration": observed, "replicas": replicas, "updatedReplicas": available,
			"readyReplicas": available, "availableReplicas": available,
			"conditions": []any{map[string]any{"type": "Available", "status": "True"}},
		},
	}}
	return u
}

func TestStatusOnlyKeepsWhatKstatusReads(t *testing.T) {
	got := statusOnly(deployment(2, 2, 1, 1))
	if _, found, _ := unstructured.NestedMap(got.Object, "spec", "template"); found {
		t.Error("spec.template kept")
	}
	if got.GetManagedFields() != nil {
		t.Error("managedFields kept")
	}
	if a := got.GetAnnotations(); len(a) != 2 || a[helmReleaseName] != "demo-valkey" {
		t.Errorf("annotations = %v, want Helm's two", a)
	}
	if r, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas"); r != 1 {
		t.Errorf("spec.replicas = %d, want 1", r)
	}
	if s := readiness(got); s != "Current" {
		t.Errorf("kstatus on the reduced object = %q, want Current", s)
	}
	if s := readiness(statusOnly(deployment(3, 2, 1, 1))); s != "InProgress" {
		t.Errorf("kstatus on a reduced object not yet observed = %q, want InProgress", s)
	}
}

func TestDesiredOrReadinessChanged(t *testing.T) {
	ready := statusOnly(deployment(2, 2, 1, 1))
	cases := []struct {
		name   string
		before *unstructured.Unstructured
		after  *unstructured.Unstructured
		want   bool
	}{
		{"status only: a second of three pods became available", statusOnly(deployment(2, 2, 3, 1)), statusOnly(deployment(2, 2, 3, 2)), false},
		{"scaled by hand (spec and generation)", ready, statusOnly(deployment(3, 2, 3, 1)), true},
		{"roll-out observed, still ready", statusOnly(deployment(3, 2, 1, 1)), statusOnly(deployment(3, 3, 1, 1)), true},
		{"pods crashed: no longer available", ready, statusOnly(deployment(2, 2, 1, 0)), true},
	}
	p := desiredOrReadinessChanged()
	for _, c := range cases {
		if got := p.Update(event.UpdateEvent{ObjectOld: c.before, ObjectNew: c.after}); got != c.want {
			t.Errorf("%s: passed = %v, want %v", c.name, got, c.want)
		}
	}
	// Labels changed by hand.
	relabelled := ready.DeepCopy()
	relabelled.SetLabels(map[string]string{"app.kubernetes.io/instance": "other"})
	if !p.Update(event.UpdateEvent{ObjectOld: ready, ObjectNew: relabelled}) {
		t.Error("a label change did not pass")
	}
	// A ConfigMap's data changes only its version: every metadata event passes.
	cm := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "demo-valkey-config", ResourceVersion: "1"}}
	cm2 := cm.DeepCopy()
	cm2.ResourceVersion = "2"
	if !p.Update(event.UpdateEvent{ObjectOld: cm, ObjectNew: cm2}) {
		t.Error("a metadata-only event did not pass")
	}
}
