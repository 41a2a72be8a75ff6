package diff

import (
	"encoding/base64"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestSecretValuesAreMaskedAndComparedByHash: every key of a Secret is masked on both
// sides; an unchanged value shows no difference, a changed one shows as changed, an
// added or removed key as a masked line; stringData counts as data. No value and no
// base64 of a value is in the diff.
func TestSecretValuesAreMaskedAndComparedByHash(t *testing.T) {
	before := normalize(decode(t, `apiVersion: v1
kind: Secret
metadata: {name: s, namespace: demo, resourceVersion: "12", uid: abc}
data: {same: `+b64("value-same")+`, changed: `+b64("value-old")+`, removed: `+b64("value-removed")+`}
`))
	after := normalize(decode(t, `apiVersion: v1
kind: Secret
metadata: {name: s, namespace: demo}
data: {changed: `+b64("value-new")+`}
stringData: {same: value-same, added: value-added}
`))
	d, err := unified(before, after, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("diff:\n%s", d)
	for _, v := range []string{"value-same", "value-old", "value-new", "value-removed", "value-added"} {
		if strings.Contains(d, v) || strings.Contains(d, b64(v)) {
			t.Errorf("the diff shows %q", v)
		}
	}
	for _, want := range []string{"+  added: '***'\n", "-  changed: '***'\n", "+  changed: '*** (changed)'\n", "-  removed: '***'\n", "   same: '***'\n"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q", want)
		}
	}
	if strings.Contains(d, "resourceVersion") || strings.Contains(d, "uid") {
		t.Error("server-set metadata is in the diff")
	}
}

// TestCredentialLiteralsAreMasked: values the credential guard flags (an env-style
// {name, value} named like a password, a key named like a token, a list under such a
// key, a high-entropy string) are masked in any object; ordinary values are not.
func TestCredentialLiteralsAreMasked(t *testing.T) {
	obj := func(pw, token, arg, random string) map[string]any {
		return normalize(decode(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers:
      - name: app
        image: example.org/app:1
        env:
        - {name: DB_PASSWORD, value: "`+pw+`"}
        - {name: LOG_LEVEL, value: debug}
        config: {apiToken: "`+token+`", passwords: ["`+arg+`"], opaque: "`+random+`"}
`))
	}
	before := obj("pw-old-1", "tok-same-1", "list-old-1", "Zx8q2Lw9Rt4Vb7Nm1Kp3Hs6Dj5Fg0Aq2")
	after := obj("pw-new-2", "tok-same-1", "list-new-2", "Qw3e4R5t6Y7u8I9o0PaSdFgHjKlZxCvB")
	d, err := unified(before, after, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("diff:\n%s", d)
	for _, v := range []string{"pw-old-1", "pw-new-2", "tok-same-1", "list-old-1", "list-new-2", "Zx8q2Lw9", "Qw3e4R5t"} {
		if strings.Contains(d, v) {
			t.Errorf("the diff shows %q", v)
		}
	}
	if n := strings.Count(d, "'*** (changed)'"); n != 3 {
		t.Errorf("%d values shown as changed, want 3 (the password, the list entry, the random string)", n)
	}
	if !strings.Contains(d, "value: debug") {
		t.Error("an ordinary value was masked")
	}
	same, err := unified(before, obj("pw-old-1", "tok-same-1", "list-old-1", "Zx8q2Lw9Rt4Vb7Nm1Kp3Hs6Dj5Fg0Aq2"), "a", "b")
	if err != nil || same != "" {
		t.Errorf("equal objects: diff %q, %v; want none", same, err)
	}
}

// TestNormalizeDropsServerFields: what the API server sets is not part of a diff.
func TestNormalizeDropsServerFields(t *testing.T) {
	n := normalize(decode(t, `apiVersion: v1
kind: ConfigMap
metadata:
  name: c
  uid: u
  resourceVersion: "1"
  generation: 2
  creationTimestamp: "2026-01-01T00:00:00Z"
  managedFields: [{manager: x}]
  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}
status: {phase: x}
data: {a: b}
`))
	want := normalize(decode(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n"))
	if !equal(n, want) {
		t.Errorf("normalized: %v, want %v", n, want)
	}
}
