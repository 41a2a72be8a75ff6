package plan

import (
	"encoding/json"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// merge deep-merges overlay into base and returns base: maps merge key by key, any
// other value replaces, and a null in the overlay deletes the key (Helm's rules).
func merge(base, overlay map[string]any) map[string]any {
	if base == nil {
		base = map[string]any{}
	}
	for k, v := range overlay {
		if v == nil {
			delete(base, k)
			continue
		}
		if om, ok := v.(map[string]any); ok {
			if bm, ok := base[k].(map[string]any); ok {
				base[k] = merge(bm, om)
				continue
			}
			base[k] = merge(map[string]any{}, om)
			continue
		}
		base[k] = v
	}
	return base
}

// fromJSON decodes an apiextensions JSON value holding a mapping.
func fromJSON(v apiextensionsv1.JSON) (map[string]any, error) {
	if len(v.Raw) == 0 {
		return map[string]any{}, nil
	}
	var out map[string]any
	if err := json.Unmarshal(v.Raw, &out); err != nil {
		return nil, fmt.Errorf("expected a mapping: %w", err)
	}
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}

// normalize round-trips v through JSON so every number is a float64 or an int64-safe
// json.Number-free value and every map is map[string]any, as Helm sees values.
func normalize(v map[string]any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return out, nil
}
