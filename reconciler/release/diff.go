package release

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
)

// sensitiveKey matches value keys whose content is masked in plan output. Values carry
// references to Secrets, never secrets; this is a second line of defence.
var sensitiveKey = regexp.MustCompile(`(?i)(password|secret|token|privatekey|apikey)`)

// ValueChanges returns, per release to upgrade, the dotted paths of values that differ
// between the deployed revision and the plan. Paths under sensitive keys are shown
// with their value masked; values themselves are never returned.
func (e *Engine) ValueChanges(steps []Step) map[string][]string {
	out := map[string][]string{}
	for _, s := range steps {
		if s.Action != ActionUpgrade || s.current == nil || s.current.latest == nil || s.planned == nil {
			continue
		}
		var paths []string
		diffValues("", s.current.latest.Config, s.planned.Values, &paths)
		if s.current.latest.Chart != nil && s.current.latest.Chart.Metadata != nil &&
			s.current.latest.Chart.Metadata.Version != s.planned.ChartVersion {
			paths = append(paths, fmt.Sprintf("(chart %s → %s)", s.current.latest.Chart.Metadata.Version, s.planned.ChartVersion))
		}
		sort.Strings(paths)
		out[s.Release] = paths
	}
	return out
}

// diffValues appends the paths at which a and b differ.
func diffValues(prefix string, a, b map[string]any, paths *[]string) {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for k := range keys {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		am, aok := a[k].(map[string]any)
		bm, bok := b[k].(map[string]any)
		if aok && bok {
			diffValues(path, am, bm, paths)
			continue
		}
		if !reflect.DeepEqual(normalizeNumber(a[k]), normalizeNumber(b[k])) {
			if sensitiveKey.MatchString(k) {
				path += " (masked)"
			}
			*paths = append(*paths, path)
		}
	}
}

// normalizeNumber makes ints and floats of equal value compare equal.
func normalizeNumber(v any) any {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int64:
		return float64(n)
	}
	return v
}
