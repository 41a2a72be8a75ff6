package release

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// objects parses a release manifest into the identities kstatus waits for; resources
// without a namespace get the release's when the API server says they are namespaced.
func objects(manifest, namespace string, mapper meta.RESTMapper) (object.ObjMetadataSet, []*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	var set object.ObjMetadataSet
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		u := &unstructured.Unstructured{}
		if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096).Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				continue
			}
			return nil, nil, err
		}
		if len(u.Object) == 0 {
			continue
		}
		gvk := u.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %s: %w", gvk.Kind, u.GetName(), err)
		}
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace && u.GetNamespace() == "" {
			u.SetNamespace(namespace)
		}
		objs = append(objs, u)
		set = append(set, object.UnstructuredToObjMetadata(u))
	}
	return set, objs, nil
}

// waitReady waits until every object is Current by kstatus, polling at interval, and
// explains what is not ready on failure.
func (e *Engine) waitReady(ctx context.Context, set object.ObjMetadataSet, namespace string, timeout time.Duration) error {
	rm := ssa.NewResourceManager(e.cluster.Client, e.poller(), ssa.Owner{Field: "platzwart", Group: "platzwart.io"})
	err := rm.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: e.opts.PollInterval, Timeout: timeout, FailFast: true})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if why := e.explain(context.WithoutCancel(ctx), set, namespace); why != "" {
		return errors.New(why)
	}
	return err
}

// explain describes every object of set that is not Current, with the reasons its
// pods give (unschedulable, crash-looping), like
// `Deployment demo/demo-jitsi-jvb: 0/1 replicas available: 0/1 nodes are available: Insufficient cpu`.
func (e *Engine) explain(ctx context.Context, set object.ObjMetadataSet, namespace string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var msgs []string
	for _, id := range set {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(id.GroupKind.WithVersion(""))
		mapping, err := e.cluster.Mapper.RESTMapping(id.GroupKind)
		if err != nil {
			continue
		}
		u.SetGroupVersionKind(mapping.GroupVersionKind)
		if err := e.cluster.Client.Get(ctx, client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, u); err != nil {
			msgs = append(msgs, fmt.Sprintf("%s %s/%s: %v", id.GroupKind.Kind, id.Namespace, id.Name, err))
			continue
		}
		res, err := status.Compute(u)
		if err != nil || res.Status == status.CurrentStatus {
			continue
		}
		msg := fmt.Sprintf("%s %s/%s: %s", id.GroupKind.Kind, id.Namespace, id.Name, res.Message)
		if reason := e.podReasons(ctx, u, namespace); reason != "" {
			msg += ": " + reason
		}
		msgs = append(msgs, msg)
	}
	sort.Strings(msgs)
	return strings.Join(msgs, "; ")
}

// podReasons returns why the pods selected by a workload are not ready.
func (e *Engine) podReasons(ctx context.Context, u *unstructured.Unstructured, namespace string) string {
	sel, found, _ := unstructured.NestedMap(u.Object, "spec", "selector", "matchLabels")
	if !found || len(sel) == 0 {
		return ""
	}
	set := labels.Set{}
	for k, v := range sel {
		if s, ok := v.(string); ok {
			set[k] = s
		}
	}
	var pods corev1.PodList
	if err := e.cluster.Client.List(ctx, &pods, client.InNamespace(u.GetNamespace()), client.MatchingLabelsSelector{Selector: set.AsSelector()}); err != nil {
		return ""
	}
	seen := map[string]bool{}
	var reasons []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			reasons = append(reasons, s)
		}
	}
	for _, p := range pods.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				add(c.Message)
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
				add(fmt.Sprintf("container %s: %s %s", cs.Name, w.Reason, w.Message))
			}
		}
	}
	if len(pods.Items) == 0 {
		return "no pods"
	}
	return strings.Join(reasons, "; ")
}
