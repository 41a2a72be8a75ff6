package postrender

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Object is one Kubernetes object of a rendered manifest, decoded.
type Object struct {
	// APIVersion and Kind are the object's type.
	APIVersion string
	Kind       string
	// Namespace is metadata.namespace ("" when the chart leaves it to Helm).
	Namespace string
	// Name is metadata.name.
	Name string
	// Fields is the whole decoded object.
	Fields map[string]any
}

// Group is the API group of the object ("" for the core group).
func (o *Object) Group() string {
	if i := strings.LastIndex(o.APIVersion, "/"); i >= 0 {
		return o.APIVersion[:i]
	}
	return ""
}

// ID identifies the object in messages: Kind/namespace/name, or Kind/name without a
// namespace, with the group when it is not the core group (Deployment.apps/ns/name).
func (o *Object) ID() string {
	kind := o.Kind
	if g := o.Group(); g != "" {
		kind += "." + g
	}
	if o.Namespace == "" {
		return kind + "/" + o.Name
	}
	return kind + "/" + o.Namespace + "/" + o.Name
}

// document is one document of a YAML stream: its text and its decoded top-level value.
type document struct {
	raw []byte
	obj map[string]any // nil for an empty document (only comments or whitespace)
}

// splitDocuments splits a YAML stream into documents at `---` lines, the way Helm's
// client does (k8s.io/apimachinery's YAMLReader), and decodes each one. JSON documents
// are YAML too, so both decode; quoting and flow style do not matter.
func splitDocuments(data []byte) ([]document, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []document
	for i := 1; ; i++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var v any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		d := document{raw: raw}
		switch t := v.(type) {
		case nil:
		case map[string]any:
			d.obj = t
		default:
			return nil, fmt.Errorf("document %d: a Kubernetes object must be a mapping, not %T", i, v)
		}
		out = append(out, d)
	}
}

// Parse decodes every object of a rendered manifest: multi-document YAML, JSON,
// quoted keys and values, flow style; the items of a `…List` document are objects too
// (Helm's client flattens them).
func Parse(data []byte) ([]*Object, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	var out []*Object
	for _, d := range docs {
		if d.obj != nil {
			out = appendObjects(out, d.obj)
		}
	}
	return out, nil
}

// appendObjects appends m, or the items of m when it is a list.
func appendObjects(out []*Object, m map[string]any) []*Object {
	if items, ok := listItems(m); ok {
		for _, it := range items {
			if im, ok := it.(map[string]any); ok {
				out = appendObjects(out, im)
			}
		}
		return out
	}
	o := &Object{Fields: m}
	o.APIVersion, _ = m["apiVersion"].(string)
	o.Kind, _ = m["kind"].(string)
	if md, ok := m["metadata"].(map[string]any); ok {
		o.Namespace, _ = md["namespace"].(string)
		o.Name, _ = md["name"].(string)
	}
	return append(out, o)
}

// listItems returns the items of a `…List` document.
func listItems(m map[string]any) ([]any, bool) {
	kind, _ := m["kind"].(string)
	if !strings.HasSuffix(kind, "List") {
		return nil, false
	}
	items, ok := m["items"].([]any)
	return items, ok
}

// KeepVolumes marks every PersistentVolumeClaim of a rendered manifest, and every
// volumeClaimTemplate of every StatefulSet, with KeepAnnotation, and turns a
// StatefulSet's persistentVolumeClaimRetentionPolicy.whenDeleted Delete into Retain.
// Objects are found by decoding the manifest, so the way a chart writes them (quoted,
// JSON, flow style, in a List) does not matter. Documents that need no change are
// returned byte for byte; changed documents are re-encoded as YAML.
func KeepVolumes(data []byte) ([]byte, error) {
	return transform(data, keepObject)
}

// AnnotatePodTemplates sets annotations on the pod template of every Deployment,
// StatefulSet and DaemonSet (group apps) of a rendered manifest, found by decoding it
// as KeepVolumes does, so that a change of the annotations rolls exactly the
// release's workloads. A manifest without workloads is returned unchanged: that is
// not an error. Documents that need no change are returned byte for byte.
func AnnotatePodTemplates(data []byte, annotations map[string]string) ([]byte, error) {
	if len(annotations) == 0 {
		return data, nil
	}
	return transform(data, func(m map[string]any) bool { return annotatePodTemplate(m, annotations) })
}

// annotatePodTemplate annotates m's pod template (or those of a list's items) and
// reports whether it changed.
func annotatePodTemplate(m map[string]any, annotations map[string]string) bool {
	if items, ok := listItems(m); ok {
		changed := false
		for _, it := range items {
			if im, ok := it.(map[string]any); ok && annotatePodTemplate(im, annotations) {
				changed = true
			}
		}
		return changed
	}
	o := &Object{}
	o.APIVersion, _ = m["apiVersion"].(string)
	o.Kind, _ = m["kind"].(string)
	if o.Group() != "apps" || (o.Kind != "Deployment" && o.Kind != "StatefulSet" && o.Kind != "DaemonSet") {
		return false
	}
	spec, ok := m["spec"].(map[string]any)
	if !ok {
		return false
	}
	tmpl, ok := spec["template"].(map[string]any)
	if !ok {
		tmpl = map[string]any{}
		spec["template"] = tmpl
	}
	changed := false
	for _, k := range sortedKeys(annotations) {
		if setAnnotation(tmpl, k, annotations[k]) {
			changed = true
		}
	}
	return changed
}

// transform applies change to every decoded document and re-encodes those it changed.
func transform(data []byte, change func(map[string]any) bool) ([]byte, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	changed := false
	for i := range docs {
		if docs[i].obj != nil && change(docs[i].obj) {
			out, err := yaml.Marshal(docs[i].obj)
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", i+1, err)
			}
			docs[i].raw = out
			changed = true
		}
	}
	if !changed {
		return data, nil
	}
	var b bytes.Buffer
	for _, d := range docs {
		if len(bytes.TrimSpace(d.raw)) == 0 {
			continue
		}
		b.WriteString("---\n")
		b.Write(d.raw)
		if !bytes.HasSuffix(d.raw, []byte("\n")) {
			b.WriteString("\n")
		}
	}
	return b.Bytes(), nil
}

// keepObject marks m (or the items of a list) and reports whether it changed.
func keepObject(m map[string]any) bool {
	if items, ok := listItems(m); ok {
		changed := false
		for _, it := range items {
			if im, ok := it.(map[string]any); ok && keepObject(im) {
				changed = true
			}
		}
		return changed
	}
	o := &Object{}
	o.APIVersion, _ = m["apiVersion"].(string)
	o.Kind, _ = m["kind"].(string)
	switch {
	case o.Group() == "" && o.Kind == "PersistentVolumeClaim":
		return annotateKeep(m)
	case o.Group() == "apps" && o.Kind == "StatefulSet":
		// Claims made from volumeClaimTemplates belong to the StatefulSet controller,
		// not to Helm, so Helm's uninstall never deletes them; what could is the
		// StatefulSet's own retention policy, which is forced to Retain. The templates
		// themselves are left alone: they are immutable, and annotating them would make
		// the next upgrade of every StatefulSet installed before fail.
		spec, ok := m["spec"].(map[string]any)
		if !ok {
			return false
		}
		if pol, ok := spec["persistentVolumeClaimRetentionPolicy"].(map[string]any); ok && pol["whenDeleted"] == "Delete" {
			pol["whenDeleted"] = "Retain"
			return true
		}
		return false
	}
	return false
}

// annotateKeep sets KeepAnnotation in m's metadata and reports whether it changed.
func annotateKeep(m map[string]any) bool { return setAnnotation(m, KeepAnnotation, KeepValue) }

// setAnnotation sets one annotation in m's metadata and reports whether it changed.
func setAnnotation(m map[string]any, key, value string) bool {
	md, ok := m["metadata"].(map[string]any)
	if !ok {
		md = map[string]any{}
		m["metadata"] = md
	}
	ann, ok := md["annotations"].(map[string]any)
	if !ok {
		ann = map[string]any{}
		md["annotations"] = ann
	}
	if ann[key] == value {
		return false
	}
	ann[key] = value
	return true
}
