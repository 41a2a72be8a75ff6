package guard

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"github.com/fluxcd/pkg/apis/kustomize"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/yamldoc"
)

// Finding is a value that looks like a credential literal. It never holds the value.
type Finding struct {
	// Field is the value's path below the scanned root (nextcloud.extraEnv[0].value).
	Field string
	// Why says what gave it away: the key or variable name, or the value's shape.
	Why string
}

// Warning is a Finding in a document of the repository.
type Warning struct {
	// File and Document (`Workplace "demo"`, `Profile "big"`) hold the value.
	File     string
	Document string
	Finding
}

// Error formats the warning as `file: document: field: message`; the value is never
// part of it.
func (w Warning) Error() string {
	return yamldoc.Errorf(w.File, w.Document, w.Field,
		"looks like a credential literal (%s); keep credentials out of Git: reference a Secret instead (valueFrom.secretKeyRef in env lists, or the chart's existingSecret-style value)", w.Why).Error()
}

// WorkplaceCredentials scans a workplace's values (spec.values) and the values of its
// profile chain (spec.values of each profile it extends) for credential literals.
func WorkplaceCredentials(w *load.Workplace, cat *catalog.Catalog) []Warning {
	var out []Warning
	for _, f := range scanValues(w.Spec.Values) {
		out = append(out, Warning{File: w.File, Document: w.Label(), Finding: Finding{Field: "spec.values." + f.Field, Why: f.Why}})
	}
	for _, f := range scanPatches(w.Spec.Patches) {
		out = append(out, Warning{File: w.File, Document: w.Label(), Finding: Finding{Field: "spec.patches." + f.Field, Why: f.Why}})
	}
	seen := map[string]bool{}
	for name := w.Spec.Profile; name != "" && !seen[name]; {
		seen[name] = true
		p, ok := cat.Profiles[name]
		if !ok {
			break
		}
		for _, f := range scanValues(p.Spec.Values) {
			out = append(out, Warning{File: p.File, Document: fmt.Sprintf("%s %q", catalog.ProfileKind, name), Finding: Finding{Field: "spec.values." + f.Field, Why: f.Why}})
		}
		name = p.Spec.Extends
	}
	return out
}

// scanValues scans per-component values in component order.
func scanValues(values map[string]apiextensionsv1.JSON) []Finding {
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Finding
	for _, n := range names {
		var v any
		if err := json.Unmarshal(values[n].Raw, &v); err != nil {
			continue // the plan reports invalid values
		}
		out = append(out, Credentials(v, n)...)
	}
	return out
}

// scanPatches scans the kustomize patches of each component: a patch can put a literal
// into an env list or a ConfigMap as easily as values can. A patch is YAML or JSON
// (a strategic merge patch or a JSON 6902 operation list); one that does not parse is
// reported by the render.
func scanPatches(patches map[string][]kustomize.Patch) []Finding {
	names := make([]string, 0, len(patches))
	for n := range patches {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Finding
	for _, n := range names {
		for i, p := range patches[n] {
			var v any
			if err := yaml.Unmarshal([]byte(p.Patch), &v); err != nil {
				continue
			}
			out = append(out, Credentials(v, fmt.Sprintf("%s[%d].patch", n, i))...)
		}
	}
	return out
}

// Credentials walks v (maps, lists, scalars, as decoded from JSON) and reports values
// that look like credential literals, by key (password, secret, token, api key,
// private key, ... in any case and separator style, also as the name of an
// env-style {name, value} entry) and by shape (PEM private keys, JWTs, long
// high-entropy strings). References ({name, key}, secretKeyRef, existingSecret,
// *SecretName) are not literals and pass. prefix is the path of v.
func Credentials(v any, prefix string) []Finding {
	var out []Finding
	walk(v, prefix, "", &out)
	return out
}

func walk(v any, field, key string, out *[]Finding) {
	switch t := v.(type) {
	case map[string]any:
		// An env-style entry: {name: DB_PASSWORD, value: "..."}.
		if name, ok := t["name"].(string); ok {
			if val, ok := t["value"].(string); ok && literal(val) && credentialKey(name) {
				*out = append(*out, Finding{Field: field + ".value", Why: fmt.Sprintf("the value of %q", name)})
				return
			}
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walk(t[k], join(field, k), k, out)
		}
	case []any:
		for i, e := range t {
			walk(e, fmt.Sprintf("%s[%d]", field, i), key, out)
		}
	case string:
		if !literal(t) {
			return
		}
		if key != "" && credentialKey(key) {
			*out = append(*out, Finding{Field: field, Why: fmt.Sprintf("key %q", key)})
			return
		}
		if why := credentialShape(t); why != "" {
			*out = append(*out, Finding{Field: field, Why: why})
		}
	}
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// literal reports whether s is a value someone typed in, not a placeholder or an
// expansion: empty strings, ${VAR}, $(VAR) and {{ templates }} are not literals.
func literal(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && !strings.HasPrefix(s, "${") && !strings.HasPrefix(s, "$(") && !strings.Contains(s, "{{")
}

// normalize lowercases a key and drops separators: DB_PASSWORD, db-password and
// dbPassword all become dbpassword.
func normalize(k string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.', ' ':
			return -1
		}
		return r
	}, strings.ToLower(k))
}

// credentialWord reports whether a key or variable name names a credential.
func credentialWord(k string) bool {
	n := normalize(k)
	for _, w := range []string{"password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey", "accesskey", "credential", "authkey", "signingkey", "encryptionkey"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return strings.HasSuffix(n, "pass") || strings.HasSuffix(n, "pwd")
}

// credentialKey reports whether a map key holding a scalar names a credential. Keys
// that name or describe one are not: existingSecret: my-secret, secretName: tls,
// passwordKey: password, tokenUrl: https://...
func credentialKey(k string) bool {
	n := normalize(k)
	if !credentialWord(k) || strings.HasPrefix(n, "existing") {
		return false
	}
	for _, s := range []string{"secretkey", "privatekey", "apikey", "accesskey", "signingkey", "encryptionkey", "authkey"} {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	for _, s := range []string{"name", "ref", "file", "path", "dir", "url", "uri", "endpoint", "enabled", "length",
		"policy", "mode", "type", "format", "ttl", "lifetime", "lifespan", "timeout", "duration", "seconds",
		"expiry", "expiration", "header", "algorithm", "method", "namespace", "key", "keys", "id", "size",
		"count", "prefix", "suffix", "claim", "scope", "scopes", "audience", "issuer", "host", "port", "user",
		"username"} {
		if strings.HasSuffix(n, s) {
			return false
		}
	}
	return true
}

var (
	pemPrivate = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----`)
	jwt        = regexp.MustCompile(`^eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$`)
)

// credentialShape says why s looks like a credential by its shape, or "".
func credentialShape(s string) string {
	switch {
	case pemPrivate.MatchString(s):
		return "a PEM private key"
	case jwt.MatchString(s):
		return "a JSON Web Token"
	case highEntropy(s):
		return "a long high-entropy string"
	}
	return ""
}

// highEntropy reports whether s looks like a generated secret: at least 32
// characters without spaces, paths or dots, mixing letters and digits, at 4.2 bits
// per character or more (hex digests stay at 4 at most; random base64 is near 5 at
// this length, more beyond).
func highEntropy(s string) bool {
	if len(s) < 32 || strings.ContainsAny(s, " \t\n/.:@") {
		return false
	}
	var lower, upper, digit bool
	counts := map[rune]int{}
	for _, r := range s {
		counts[r]++
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		}
	}
	if !digit || !lower && !upper {
		return false // identifiers and words have no digits; generated secrets do
	}
	var h float64
	n := float64(len([]rune(s)))
	for _, c := range counts {
		p := float64(c) / n
		h -= p * math.Log2(p)
	}
	return h >= 4.2
}
