package controller

import (
	"context"
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/platzwart/platzwart/reconciler/release"
)

// watchedStatus serves the engine's readiness waits from a target's watches
// (release.StatusReader): kinds kstatus reads whole come from their informers of
// whole objects (reduced by statusOnly), kinds whose metadata suffices from the
// metadata informers. A kind not yet watched is read from the API server.
type watchedStatus struct{ t *target }

var _ release.StatusReader = watchedStatus{}

func (s watchedStatus) Get(ctx context.Context, key client.ObjectKey, u *unstructured.Unstructured) error {
	gvk := u.GroupVersionKind()
	if !s.t.synced(gvk) {
		return fmt.Errorf("%s: %w", gvk.Kind, release.ErrNotWatched)
	}
	if release.NeedsStatus(gvk.GroupKind()) {
		return s.t.meta.Get(ctx, key, u)
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	if err := s.t.meta.Get(ctx, key, m); err != nil {
		return err
	}
	u.Object = map[string]any{}
	u.SetGroupVersionKind(gvk)
	u.SetName(m.Name)
	u.SetNamespace(m.Namespace)
	u.SetUID(m.UID)
	u.SetResourceVersion(m.ResourceVersion)
	u.SetGeneration(m.Generation)
	u.SetLabels(m.Labels)
	return nil
}

// synced reports whether the target's informer of gvk has listed, without starting
// one (a cache read of an unwatched kind would).
func (t *target) synced(gvk schema.GroupVersionKind) bool {
	t.watchMu.Lock()
	defer t.watchMu.Unlock()
	return t.watched[gvk] == watchSynced
}

// watchObject is the object a target's informer of gvk holds: whole (reduced by
// statusOnly) for the kinds kstatus computes readiness from, metadata otherwise.
func watchObject(gvk schema.GroupVersionKind) client.Object {
	if release.NeedsStatus(gvk.GroupKind()) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		return u
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	return m
}

// statusOnly reduces a watched whole object to what kstatus reads and what tells a
// change of its desired state: the metadata metadataOnly keeps plus the deletion
// timestamp, the spec without pod templates (a change there changes the
// generation), and the status.
func statusOnly(u *unstructured.Unstructured) *unstructured.Unstructured {
	out := &unstructured.Unstructured{Object: map[string]any{}}
	out.SetAPIVersion(u.GetAPIVersion())
	out.SetKind(u.GetKind())
	out.SetName(u.GetName())
	out.SetNamespace(u.GetNamespace())
	out.SetUID(u.GetUID())
	out.SetResourceVersion(u.GetResourceVersion())
	out.SetGeneration(u.GetGeneration())
	out.SetLabels(u.GetLabels())
	out.SetDeletionTimestamp(u.GetDeletionTimestamp())
	if a := u.GetAnnotations(); a[helmReleaseName] != "" {
		out.SetAnnotations(map[string]string{helmReleaseName: a[helmReleaseName], helmReleaseNamespace: a[helmReleaseNamespace]})
	}
	if spec, ok := u.Object["spec"].(map[string]any); ok {
		kept := make(map[string]any, len(spec))
		for k, v := range spec {
			switch k {
			case "template", "jobTemplate", "volumeClaimTemplates":
			default:
				kept[k] = v
			}
		}
		out.Object["spec"] = kept
	}
	if st, ok := u.Object["status"]; ok {
		out.Object["status"] = st
	}
	return out
}

// reduce is the targets' cache transform: metadataOnly or statusOnly by the kind of
// informer.
func reduce(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return statusOnly(u), nil
	}
	return metadataOnly(obj)
}

// desiredOrReadinessChanged passes the watch events that may need a reconcile: every
// event on metadata-only objects (a ConfigMap's data changes only its version),
// and on whole objects a change of anything but their status, or a change of their
// readiness by kstatus (a Deployment whose pods crash). The status updates of a
// roll-out in progress pass none: they would wake a Workplace for nothing, and its
// own upgrade would keep it from being verified.
func desiredOrReadinessChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		before, ok1 := e.ObjectOld.(*unstructured.Unstructured)
		after, ok2 := e.ObjectNew.(*unstructured.Unstructured)
		if !ok1 || !ok2 {
			return true
		}
		if before.GetGeneration() != after.GetGeneration() ||
			!equality.Semantic.DeepEqual(before.GetLabels(), after.GetLabels()) ||
			!equality.Semantic.DeepEqual(before.GetAnnotations(), after.GetAnnotations()) ||
			!equality.Semantic.DeepEqual(before.GetDeletionTimestamp(), after.GetDeletionTimestamp()) ||
			!equality.Semantic.DeepEqual(before.Object["spec"], after.Object["spec"]) {
			return true
		}
		return readiness(before) != readiness(after)
	}}
}

// readiness is kstatus's verdict on an object, "" when it cannot say.
func readiness(u *unstructured.Unstructured) status.Status {
	res, err := status.Compute(u)
	if err != nil {
		return ""
	}
	return res.Status
}
