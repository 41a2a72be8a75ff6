package conformance_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
)

// workplace is one rendered workplace, by release.
type workplace map[string]*objects

// objects are the rendered objects of one release that the invariants look at.
type objects struct {
	pods      []pod
	services  []corev1.Service
	ingresses []networkingv1.Ingress
	routes    []httpRoute
	policies  []networkingv1.NetworkPolicy
	text      string
}

// pod is the pod template of a workload.
type pod struct {
	workload string // Kind/name
	labels   map[string]string
	spec     corev1.PodSpec
}

// httpRoute is the part of a Gateway API HTTPRoute the invariants need.
type httpRoute struct {
	name        string
	annotations map[string]string
	hostnames   []string
	parents     []map[string]any
	backends    []map[string]any
	paths       []string
}

func renderPlan(t *testing.T, p *plan.Plan) workplace {
	t.Helper()
	ms, err := render.Plan(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	w := workplace{}
	for _, m := range ms {
		objs := &objects{text: string(m.Bytes())}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(m.Bytes())))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096).Decode(&u.Object); err != nil {
				t.Fatalf("%s: %v", m.Release, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if err := objs.add(u); err != nil {
				t.Fatalf("%s: %s/%s: %v", m.Release, u.GetKind(), u.GetName(), err)
			}
		}
		w[m.Release] = objs
	}
	return w
}

func (o *objects) add(u *unstructured.Unstructured) error {
	conv := runtime.DefaultUnstructuredConverter
	id := u.GetKind() + "/" + u.GetName()
	switch u.GetKind() {
	case "Deployment":
		var d appsv1.Deployment
		if err := conv.FromUnstructured(u.Object, &d); err != nil {
			return err
		}
		o.pods = append(o.pods, pod{id, d.Spec.Template.Labels, d.Spec.Template.Spec})
	case "StatefulSet":
		var s appsv1.StatefulSet
		if err := conv.FromUnstructured(u.Object, &s); err != nil {
			return err
		}
		o.pods = append(o.pods, pod{id, s.Spec.Template.Labels, s.Spec.Template.Spec})
	case "DaemonSet":
		var s appsv1.DaemonSet
		if err := conv.FromUnstructured(u.Object, &s); err != nil {
			return err
		}
		o.pods = append(o.pods, pod{id, s.Spec.Template.Labels, s.Spec.Template.Spec})
	case "Job":
		var j batchv1.Job
		if err := conv.FromUnstructured(u.Object, &j); err != nil {
			return err
		}
		o.pods = append(o.pods, pod{id, j.Spec.Template.Labels, j.Spec.Template.Spec})
	case "CronJob":
		var j batchv1.CronJob
		if err := conv.FromUnstructured(u.Object, &j); err != nil {
			return err
		}
		o.pods = append(o.pods, pod{id, j.Spec.JobTemplate.Spec.Template.Labels, j.Spec.JobTemplate.Spec.Template.Spec})
	case "Service":
		var s corev1.Service
		if err := conv.FromUnstructured(u.Object, &s); err != nil {
			return err
		}
		o.services = append(o.services, s)
	case "Ingress":
		var i networkingv1.Ingress
		if err := conv.FromUnstructured(u.Object, &i); err != nil {
			return err
		}
		o.ingresses = append(o.ingresses, i)
	case "NetworkPolicy":
		var n networkingv1.NetworkPolicy
		if err := conv.FromUnstructured(u.Object, &n); err != nil {
			return err
		}
		o.policies = append(o.policies, n)
	case "HTTPRoute":
		r := httpRoute{name: u.GetName(), annotations: u.GetAnnotations()}
		r.hostnames, _, _ = unstructured.NestedStringSlice(u.Object, "spec", "hostnames")
		parents, _, _ := unstructured.NestedSlice(u.Object, "spec", "parentRefs")
		for _, p := range parents {
			r.parents = append(r.parents, p.(map[string]any))
		}
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
		for _, rule := range rules {
			refs, _, _ := unstructured.NestedSlice(rule.(map[string]any), "backendRefs")
			for _, b := range refs {
				r.backends = append(r.backends, b.(map[string]any))
			}
			matches, _, _ := unstructured.NestedSlice(rule.(map[string]any), "matches")
			for _, m := range matches {
				v, _, _ := unstructured.NestedString(m.(map[string]any), "path", "value")
				r.paths = append(r.paths, v)
			}
			if len(matches) == 0 {
				r.paths = append(r.paths, "/")
			}
		}
		o.routes = append(o.routes, r)
	}
	return nil
}
