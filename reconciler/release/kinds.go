package release

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Kinds returns the kinds of the objects in the manifest of the release's newest
// revision (what a watch on its resources must cover), sorted and without repeats;
// nil when the release is not installed. Hooks are not included: Helm deletes and
// recreates them, they are not the release's standing resources.
func (s Step) Kinds() ([]schema.GroupVersionKind, error) {
	return ManifestKinds(s.CurrentManifest())
}

// ManifestKinds returns the kinds of the objects in a multi-document manifest, sorted
// and without repeats.
func ManifestKinds(manifest string) ([]schema.GroupVersionKind, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	seen := map[schema.GroupVersionKind]bool{}
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading manifest: %w", err)
		}
		u := &unstructured.Unstructured{}
		if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096).Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				continue
			}
			return nil, fmt.Errorf("decoding manifest: %w", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		gvk := u.GroupVersionKind()
		if gvk.Kind == "" || gvk.Version == "" {
			return nil, fmt.Errorf("manifest object %q has no apiVersion or kind", u.GetName())
		}
		seen[gvk] = true
	}
	out := make([]schema.GroupVersionKind, 0, len(seen))
	for gvk := range seen {
		out = append(out, gvk)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}
