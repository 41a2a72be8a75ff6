// Package workload stops and starts Deployments and StatefulSets for work that
// must not run beside them (a database restore, a major upgrade of the server they
// use), recording the replicas to give back on the object itself, so that a run
// that ended early is finished by the next one.
package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// AnnotationStoppedReplicas records, on a Deployment or StatefulSet that was scaled
// to zero, the replicas to give back. It is written in the request that scales the
// object to zero and removed in the one that scales it back.
const AnnotationStoppedReplicas = "platzwart.io/stopped-replicas"

// Kinds.
const (
	Deployment  = "Deployment"
	StatefulSet = "StatefulSet"
)

// Workload is a Deployment or StatefulSet as found.
type Workload struct {
	Kind, Namespace, Name string
	// Replicas is spec.replicas now.
	Replicas int32
	// Stopped is set when it carries AnnotationStoppedReplicas; Recorded is the
	// count recorded there.
	Stopped  bool
	Recorded int32
	// Selector selects its pods.
	Selector *metav1.LabelSelector
}

// Want is the replicas it runs when started: the recorded count when stopped.
func (w Workload) Want() int32 {
	if w.Stopped {
		return w.Recorded
	}
	return w.Replicas
}

func (w Workload) String() string { return fmt.Sprintf("%s %s/%s", w.Kind, w.Namespace, w.Name) }

// From reads a Deployment's or StatefulSet's workload; an unreadable record is an
// error naming the object.
func From(kind string, m metav1.ObjectMeta, replicas *int32, sel *metav1.LabelSelector) (Workload, error) {
	w := Workload{Kind: kind, Namespace: m.Namespace, Name: m.Name, Replicas: 1, Selector: sel}
	if replicas != nil {
		w.Replicas = *replicas
	}
	if v, ok := m.Annotations[AnnotationStoppedReplicas]; ok {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return Workload{}, fmt.Errorf("%s: annotation %s=%q is not a number of replicas", w, AnnotationStoppedReplicas, v)
		}
		w.Stopped, w.Recorded = true, int32(n)
	}
	return w, nil
}

// Get reads one workload.
func Get(ctx context.Context, cs kubernetes.Interface, namespace, kind, name string) (Workload, error) {
	switch kind {
	case Deployment:
		d, err := cs.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return Workload{}, err
		}
		return From(kind, d.ObjectMeta, d.Spec.Replicas, d.Spec.Selector)
	case StatefulSet:
		s, err := cs.AppsV1().StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return Workload{}, err
		}
		return From(kind, s.ObjectMeta, s.Spec.Replicas, s.Spec.Selector)
	}
	return Workload{}, fmt.Errorf("%s %s/%s: not a Deployment or StatefulSet", kind, namespace, name)
}

// List returns the Deployments and StatefulSets of namespace whose metadata match.
func List(ctx context.Context, cs kubernetes.Interface, namespace string, match func(metav1.ObjectMeta) bool) ([]Workload, error) {
	var out []Workload
	deps, err := cs.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Deployments in %s: %w", namespace, err)
	}
	for _, d := range deps.Items {
		if match(d.ObjectMeta) {
			w, err := From(Deployment, d.ObjectMeta, d.Spec.Replicas, d.Spec.Selector)
			if err != nil {
				return nil, err
			}
			out = append(out, w)
		}
	}
	sets, err := cs.AppsV1().StatefulSets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing StatefulSets in %s: %w", namespace, err)
	}
	for _, s := range sets.Items {
		if match(s.ObjectMeta) {
			w, err := From(StatefulSet, s.ObjectMeta, s.Spec.Replicas, s.Spec.Selector)
			if err != nil {
				return nil, err
			}
			out = append(out, w)
		}
	}
	return out, nil
}

// Stop scales w to zero, recording its replicas in the same request; a workload
// stopped already keeps its record (and is scaled to zero again).
func Stop(ctx context.Context, cs kubernetes.Interface, w Workload) error {
	var record any
	if !w.Stopped {
		record = strconv.Itoa(int(w.Replicas))
	}
	return scale(ctx, cs, w, 0, record, !w.Stopped)
}

// Start gives a stopped workload its recorded replicas back and removes the record;
// a workload that is not stopped is left alone.
func Start(ctx context.Context, cs kubernetes.Interface, w Workload) error {
	if !w.Stopped {
		return nil
	}
	return scale(ctx, cs, w, w.Recorded, nil, true)
}

// scale sets spec.replicas and, when annotate, the record (nil removes it), in one
// merge patch.
func scale(ctx context.Context, cs kubernetes.Interface, w Workload, replicas int32, record any, annotate bool) error {
	patch := map[string]any{"spec": map[string]any{"replicas": replicas}}
	if annotate {
		patch["metadata"] = map[string]any{"annotations": map[string]any{AnnotationStoppedReplicas: record}}
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: "platzwart"}
	switch w.Kind {
	case Deployment:
		_, err = cs.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Name, types.MergePatchType, data, opts)
	case StatefulSet:
		_, err = cs.AppsV1().StatefulSets(w.Namespace).Patch(ctx, w.Name, types.MergePatchType, data, opts)
	default:
		err = fmt.Errorf("not a Deployment or StatefulSet")
	}
	if err != nil {
		return fmt.Errorf("scale %s to %d: %w", w, replicas, err)
	}
	return nil
}

// PodsLeft returns the pods of the workloads that have not ended (running, pending
// or terminating): a stopped workload holds no connection once none is left.
func PodsLeft(ctx context.Context, cs kubernetes.Interface, ws []Workload) ([]string, error) {
	var left []string
	for _, w := range ws {
		sel, err := metav1.LabelSelectorAsSelector(w.Selector)
		if err != nil {
			return nil, fmt.Errorf("%s: selector: %w", w, err)
		}
		pods, err := cs.CoreV1().Pods(w.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return nil, fmt.Errorf("%s: listing its pods: %w", w, err)
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				left = append(left, p.Name)
			}
		}
	}
	return left, nil
}

// Ready reports whether a workload runs its wanted replicas, all ready and updated.
func Ready(ctx context.Context, cs kubernetes.Interface, w Workload) (bool, error) {
	switch w.Kind {
	case Deployment:
		d, err := cs.AppsV1().Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return deploymentReady(d), nil
	case StatefulSet:
		s, err := cs.AppsV1().StatefulSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return statefulSetReady(s), nil
	}
	return false, fmt.Errorf("%s: not a Deployment or StatefulSet", w)
}

func wanted(n *int32) int32 {
	if n == nil {
		return 1
	}
	return *n
}

func deploymentReady(d *appsv1.Deployment) bool {
	want := wanted(d.Spec.Replicas)
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want && d.Status.ReadyReplicas == want && d.Status.Replicas == want
}

func statefulSetReady(s *appsv1.StatefulSet) bool {
	want := wanted(s.Spec.Replicas)
	return s.Status.ObservedGeneration >= s.Generation && s.Status.UpdatedReplicas == want && s.Status.ReadyReplicas == want
}
