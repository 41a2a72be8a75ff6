package diff

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/platzwart/platzwart/reconciler/guard"
	"github.com/platzwart/platzwart/reconciler/postrender"
	"github.com/platzwart/platzwart/reconciler/render"
)

// Mask replaces every Secret value and every value that looks like a credential.
// MaskChanged replaces a masked value that differs from the other side's.
const (
	Mask        = "***"
	MaskChanged = "*** (changed)"
)

// ref identifies an object of a workplace: API group, kind, namespace and name.
type ref struct {
	group, kind, namespace, name string
}

func (r ref) String() string {
	kind := r.kind
	if r.group != "" {
		kind += "." + r.group
	}
	if r.namespace == "" {
		return kind + " " + r.name
	}
	return kind + " " + r.namespace + "/" + r.name
}

// item is one object of a release: its decoded fields and whether it is a hook.
type item struct {
	ref
	apiVersion string
	fields     map[string]any
	hook       bool
}

// objectSet is the objects of one release, in the order they were rendered.
type objectSet struct {
	order []ref
	byRef map[ref]*item
}

func (s *objectSet) add(it *item) {
	if s.byRef == nil {
		s.byRef = map[ref]*item{}
	}
	if _, dup := s.byRef[it.ref]; !dup {
		s.order = append(s.order, it.ref)
	}
	s.byRef[it.ref] = it
}

// scope tells whether a kind is namespaced (found) or cluster-scoped.
type scope func(group, kind string) (namespaced bool)

// offlineScope decides scope from the tenancy guard's built-in list.
func offlineScope(group, kind string) bool { return !guard.IsClusterScoped(group, kind) }

// parseObjects decodes a release manifest (or a hook's) into set; objects without a
// namespace get namespace when their kind is namespaced, as Helm does.
func parseObjects(set *objectSet, manifest, namespace string, hook bool, namespaced scope) error {
	objs, err := postrender.Parse([]byte(manifest))
	if err != nil {
		return err
	}
	for _, o := range objs {
		it := &item{ref: ref{group: o.Group(), kind: o.Kind, namespace: o.Namespace, name: o.Name}, apiVersion: o.APIVersion, fields: o.Fields, hook: hook}
		if it.namespace == "" && namespaced(it.group, it.kind) {
			it.namespace = namespace
		}
		set.add(it)
	}
	return nil
}

// renderedObjects decodes a rendered release: manifest and hooks.
func renderedObjects(m *render.Manifest, namespace string, namespaced scope) (*objectSet, error) {
	set := &objectSet{}
	if err := parseObjects(set, m.Manifest, namespace, false, namespaced); err != nil {
		return nil, fmt.Errorf("release %s: manifest: %w", m.Release, err)
	}
	for _, h := range m.Hooks {
		if err := parseObjects(set, h.Manifest, namespace, true, namespaced); err != nil {
			return nil, fmt.Errorf("release %s: hook %s: %w", m.Release, h.Path, err)
		}
	}
	return set, nil
}

// Fields set by the API server that say nothing about the desired state.
var noiseMetadata = []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"}

// lastApplied is kubectl's copy of the whole object, Secret values included.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// normalize returns a deep copy of an object without the fields the API server sets
// (managedFields, resourceVersion, uid, generation, creationTimestamp, status) and
// without kubectl's last-applied annotation. A Secret's stringData is folded into
// data (base64), as the API server stores it.
func normalize(fields map[string]any) map[string]any {
	if fields == nil {
		return nil
	}
	out := runtime.DeepCopyJSON(jsonNumbers(fields).(map[string]any))
	delete(out, "status")
	if md, ok := out["metadata"].(map[string]any); ok {
		for _, k := range noiseMetadata {
			delete(md, k)
		}
		if a, ok := md["annotations"].(map[string]any); ok {
			delete(a, lastApplied)
			if len(a) == 0 {
				delete(md, "annotations")
			}
		}
	}
	dropNullTimestamps(out)
	if isSecret(out) {
		if sd, ok := out["stringData"].(map[string]any); ok {
			data, _ := out["data"].(map[string]any)
			if data == nil {
				data = map[string]any{}
			}
			for k, v := range sd {
				s, _ := v.(string)
				data[k] = base64.StdEncoding.EncodeToString([]byte(s))
			}
			out["data"] = data
			delete(out, "stringData")
		}
	}
	return out
}

// jsonNumbers converts the numbers of a decoded object to int64 or float64, the
// types runtime.DeepCopyJSON accepts (YAML decoding gives float64 for every number).
func jsonNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = jsonNumbers(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = jsonNumbers(e)
		}
		return out
	case float64:
		if t == float64(int64(t)) {
			return int64(t)
		}
		return t
	case int:
		return int64(t)
	case int32:
		return int64(t)
	}
	return v
}

// dropNullTimestamps removes `creationTimestamp: null`, which typed clients write into
// pod templates.
func dropNullTimestamps(v any) {
	switch t := v.(type) {
	case map[string]any:
		if ts, ok := t["creationTimestamp"]; ok && ts == nil {
			delete(t, "creationTimestamp")
		}
		for _, e := range t {
			dropNullTimestamps(e)
		}
	case []any:
		for _, e := range t {
			dropNullTimestamps(e)
		}
	}
}

func isSecret(fields map[string]any) bool {
	kind, _ := fields["kind"].(string)
	api, _ := fields["apiVersion"].(string)
	return kind == "Secret" && api == "v1"
}

// path is the place of a value in an object, one map key or list index per element.
type path []string

func (p path) key() string { return strings.Join(p, "\x00") }

func (p path) with(elem string) path { return append(append(path{}, p...), elem) }

// credentialPaths lists the values of an object to mask: every key of a Secret's data
// and stringData, and every value the credential guard (reconciler/guard) takes for a
// credential literal, by key or by shape.
func credentialPaths(fields map[string]any) map[string]path {
	out := map[string]path{}
	if fields == nil {
		return out
	}
	if isSecret(fields) {
		for _, k := range []string{"data", "stringData"} {
			if m, ok := fields[k].(map[string]any); ok {
				for key := range m {
					p := path{k, key}
					out[p.key()] = p
				}
			}
		}
	}
	findCredentials(fields, nil, out)
	return out
}

func findCredentials(v any, at path, out map[string]path) {
	switch t := v.(type) {
	case map[string]any:
		scalars := map[string]any{}
		for k, e := range t {
			switch e := e.(type) {
			case string:
				scalars[k] = e
			case []any:
				for _, f := range guard.Credentials(map[string]any{k: e}, "") {
					if idx, ok := strings.CutPrefix(f.Field, k+"["); ok {
						p := at.with(k).with(strings.TrimSuffix(idx, "]"))
						out[p.key()] = p
					}
				}
			}
		}
		for _, f := range guard.Credentials(scalars, "") {
			var p path
			if f.Field == ".value" { // an env-style {name, value} entry
				p = at.with("value")
			} else {
				p = at.with(f.Field)
			}
			out[p.key()] = p
		}
		for k, e := range t {
			if _, ok := e.(string); !ok {
				findCredentials(e, at.with(k), out)
			}
		}
	case []any:
		for i, e := range t {
			findCredentials(e, at.with(strconv.Itoa(i)), out)
		}
	}
}

// lookup returns the value at p and whether it exists; set replaces it.
func lookup(v any, p path) (any, bool) {
	for _, elem := range p {
		switch t := v.(type) {
		case map[string]any:
			e, ok := t[elem]
			if !ok {
				return nil, false
			}
			v = e
		case []any:
			i, err := strconv.Atoi(elem)
			if err != nil || i < 0 || i >= len(t) {
				return nil, false
			}
			v = t[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func set(v any, p path, value any) {
	if len(p) == 0 {
		return
	}
	parent, ok := lookup(v, p[:len(p)-1])
	if !ok {
		return
	}
	last := p[len(p)-1]
	switch t := parent.(type) {
	case map[string]any:
		t[last] = value
	case []any:
		if i, err := strconv.Atoi(last); err == nil && i >= 0 && i < len(t) {
			t[i] = value
		}
	}
}

// digest hashes a value for comparison; the value itself is never kept or shown.
func digest(v any) [32]byte {
	return sha256.Sum256(fmt.Appendf(nil, "%T:%v", v, v))
}

// maskPair masks both sides of a comparison (either may be nil) in place: every value
// either side considers a credential is replaced by Mask on both sides, and by
// MaskChanged on the new side when its hash differs from the old one's.
func maskPair(before, after map[string]any) {
	paths := credentialPaths(before)
	for k, p := range credentialPaths(after) {
		paths[k] = p
	}
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := paths[k]
		bv, inBefore := lookup(before, p)
		av, inAfter := lookup(after, p)
		if inBefore {
			set(before, p, Mask)
		}
		if inAfter {
			if inBefore && digest(bv) != digest(av) {
				set(after, p, MaskChanged)
			} else {
				set(after, p, Mask)
			}
		}
	}
}

// equal compares two normalized objects.
func equal(a, b map[string]any) bool { return reflect.DeepEqual(a, b) }

// unified returns the unified diff of two normalized objects (nil for none), masked,
// labelled fromLabel and toLabel.
func unified(before, after map[string]any, fromLabel, toLabel string) (string, error) {
	before, after = copyOrNil(before), copyOrNil(after)
	maskPair(before, after)
	a, err := toYAML(before)
	if err != nil {
		return "", err
	}
	b, err := toYAML(after)
	if err != nil {
		return "", err
	}
	if before == nil {
		fromLabel = "/dev/null"
	}
	if after == nil {
		toLabel = "/dev/null"
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: lines(a), B: lines(b),
		FromFile: fromLabel, ToFile: toLabel, Context: 3,
	})
}

// lines splits text into lines for difflib; no text is no lines.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return difflib.SplitLines(strings.TrimSuffix(s, "\n"))
}

func copyOrNil(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return runtime.DeepCopyJSON(m)
}

func toYAML(m map[string]any) (string, error) {
	if m == nil {
		return "", nil
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// kept reports whether Helm leaves the object in place when it leaves the release
// (postrender.KeepAnnotation).
func kept(fields map[string]any) bool {
	md, _ := fields["metadata"].(map[string]any)
	a, _ := md["annotations"].(map[string]any)
	v, _ := a[postrender.KeepAnnotation].(string)
	return v == postrender.KeepValue
}
