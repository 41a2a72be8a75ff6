package secrets

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/plan"
)

const (
	jwtSecret   = "demo-jitsi-jwt"
	adminSecret = "demo-keycloak-admin"
	tlsSecret   = "demo-tls"
)

// allSecrets returns the names of the Secrets of testPlan, sorted.
func allSecrets() []string { return []string{jwtSecret, adminSecret, tlsSecret} }

// testPlan is a small plan with two component Secrets and the wildcard certificate,
// sorted by name like the plans of reconciler/plan.
func testPlan(namespace string) *plan.Plan {
	return &plan.Plan{
		Workplace: "demo",
		Namespace: namespace,
		Domain:    "demo.example.org",
		Secrets: []plan.Secret{
			{Name: jwtSecret, Component: "jitsi", Type: "Opaque", Keys: map[string]catalog.Generator{
				"app-secret": {Length: 48},
				"app-key":    {Format: "hex", Length: 64},
			}},
			{Name: adminSecret, Component: "keycloak", Type: "Opaque", Keys: map[string]catalog.Generator{
				"password": {},
			}},
			{Name: tlsSecret, Type: "kubernetes.io/tls", DNSNames: []string{"demo.example.org", "*.demo.example.org"}},
		},
	}
}

// env is a test's view of the cluster: a counted Manager, an uncounted client for
// arranging and checking, and a namespace.
type env struct {
	t       *testing.T
	cfg     *rest.Config
	ns      string
	client  kubernetes.Interface // uncounted
	manager *Manager
	counter *requestCounter
}

func newEnv(t *testing.T) *env {
	c := cluster.FromTest(t)
	e := &env{t: t, cfg: c.Config(), ns: c.NewNamespace(t)}
	var err error
	if e.client, err = kubernetes.NewForConfig(e.cfg); err != nil {
		t.Fatal(err)
	}
	counted, counter := newCountingClient(t, e.cfg)
	e.manager = &Manager{Client: counted, FieldOwner: "platzwart-test"}
	e.counter = counter
	return e
}

// ensure runs Ensure with a fresh request count and fails the test on error.
func (e *env) ensure(p *plan.Plan, owner *metav1.OwnerReference) Result {
	e.t.Helper()
	e.counter.reset()
	res, err := e.manager.Ensure(e.t.Context(), p, owner)
	if err != nil {
		e.t.Fatalf("Ensure: %v", err)
	}
	return res
}

func (e *env) get(name string) *corev1.Secret {
	e.t.Helper()
	s, err := e.client.CoreV1().Secrets(e.ns).Get(e.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get secret %s: %v", name, err)
	}
	return s
}

// snapshot returns the data of every planned Secret.
func (e *env) snapshot() map[string]map[string][]byte {
	e.t.Helper()
	out := map[string]map[string][]byte{}
	for _, name := range allSecrets() {
		out[name] = e.get(name).Data
	}
	return out
}

func (e *env) create(s *corev1.Secret) {
	e.t.Helper()
	if _, err := e.client.CoreV1().Secrets(e.ns).Create(e.t.Context(), s, metav1.CreateOptions{}); err != nil {
		e.t.Fatalf("create secret %s: %v", s.Name, err)
	}
}

func (e *env) update(s *corev1.Secret) {
	e.t.Helper()
	if _, err := e.client.CoreV1().Secrets(e.ns).Update(e.t.Context(), s, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("update secret %s: %v", s.Name, err)
	}
}

// expectNoWrites checks that the last Ensure made no mutating request, one List and
// the given number of Gets (the namespace and each Secret the List could not see).
func (e *env) expectNoWrites(gets int) {
	e.t.Helper()
	if e.counter.mutating() != 0 || e.counter.count("list") != 1 || e.counter.count("get") != gets {
		e.t.Errorf("requests: %s; want no writes, 1 list, %d gets", e.counter, gets)
	}
}

func checkResult(t *testing.T, res Result, nsCreated bool, created []string, added map[string][]string) {
	t.Helper()
	if res.NamespaceCreated != nsCreated || !slices.Equal(res.Created, created) || !maps.EqualFunc(res.KeysAdded, added, slices.Equal) {
		t.Errorf("result %+v, want namespace created %v, created %v, keys added %v", res, nsCreated, created, added)
	}
}

func equalData(a, b map[string][]byte) bool { return maps.EqualFunc(a, b, slices.Equal) }

func checkAlphabet(t *testing.T, what string, v []byte, chars string, n int) {
	t.Helper()
	if len(v) != n || strings.Trim(string(v), chars) != "" {
		t.Errorf("%s: %d characters (want %d) not all in %q", what, len(v), n, chars)
	}
}

func TestEnsureCreatesEverySecretOnce(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	// In controller mode the owner is the Workplace; any object does for the test (it
	// must exist, or the garbage collector would delete the Secrets).
	owner, err := e.client.CoreV1().ConfigMaps(e.ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref := metav1.NewControllerRef(owner, corev1.SchemeGroupVersion.WithKind("ConfigMap"))

	start := time.Now()
	res := e.ensure(testPlan(e.ns), ref)
	t.Logf("first Ensure: %s, requests %s", time.Since(start).Round(time.Millisecond), e.counter)
	checkResult(t, res, false, allSecrets(), nil)
	if e.counter.count("create") != 3 || e.counter.mutating() != 3 {
		t.Errorf("requests %s, want 3 creates and no other writes", e.counter)
	}

	for _, name := range allSecrets() {
		s := e.get(name)
		want := map[string]string{LabelManagedBy: "platzwart", LabelWorkplace: "demo"}
		switch name {
		case jwtSecret:
			want[LabelComponent] = "jitsi"
		case adminSecret:
			want[LabelComponent] = "keycloak"
		}
		if !maps.Equal(s.Labels, want) {
			t.Errorf("%s: labels %v, want %v", name, s.Labels, want)
		}
		if !maps.Equal(s.Annotations, map[string]string{AnnotationGenerated: "true"}) {
			t.Errorf("%s: annotations %v", name, s.Annotations)
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != owner.UID || !*s.OwnerReferences[0].Controller {
			t.Errorf("%s: owner references %+v", name, s.OwnerReferences)
		}
		if !slices.ContainsFunc(s.ManagedFields, func(f metav1.ManagedFieldsEntry) bool { return f.Manager == "platzwart-test" }) {
			t.Errorf("%s: not managed by the field owner platzwart-test", name)
		}
	}
	jwt := e.get(jwtSecret)
	if jwt.Type != corev1.SecretTypeOpaque || len(jwt.Data) != 2 {
		t.Errorf("%s: type %s, keys %v", jwtSecret, jwt.Type, slices.Sorted(maps.Keys(jwt.Data)))
	}
	checkAlphabet(t, "app-secret", jwt.Data["app-secret"], alphanumeric, 48)
	checkAlphabet(t, "app-key", jwt.Data["app-key"], hexDigits, 64)
	if _, err := hex.DecodeString(string(jwt.Data["app-key"])); err != nil {
		t.Errorf("app-key is not hex: %v", err)
	}
	checkAlphabet(t, "password", e.get(adminSecret).Data["password"], alphanumeric, 32)
	if tls := e.get(tlsSecret); tls.Type != corev1.SecretTypeTLS {
		t.Errorf("%s: type %s", tlsSecret, tls.Type)
	}

	// Everything exists: nothing is written, and nothing changes.
	before := e.snapshot()
	res = e.ensure(testPlan(e.ns), ref)
	checkResult(t, res, false, nil, nil)
	e.expectNoWrites(1) // the namespace
	for name, data := range e.snapshot() {
		if !equalData(data, before[name]) {
			t.Errorf("%s changed on the second Ensure", name)
		}
	}
}

func TestEnsureTLSSecretIsAValidChain(t *testing.T) {
	e := newEnv(t)
	e.ensure(testPlan(e.ns), nil)
	s := e.get(tlsSecret)
	if len(s.OwnerReferences) != 0 {
		t.Errorf("owner references %v without an owner", s.OwnerReferences)
	}
	if len(s.Data) != 3 {
		t.Errorf("keys %v, want ca.crt, tls.crt, tls.key", slices.Sorted(maps.Keys(s.Data)))
	}
	verifyTLS(t, s.Data, time.Now(),
		[]string{"demo.example.org", "meet.demo.example.org", "auth.demo.example.org"},
		[]string{"example.org", "x.y.demo.example.org", "demo.example.net"})
}

func TestEnsureNeverChangesExistingKeysAndAddsMissingOnes(t *testing.T) {
	e := newEnv(t)
	p := testPlan(e.ns)
	e.ensure(p, nil)
	before := e.snapshot()

	// An operator sets their own password and a key goes missing.
	admin := e.get(adminSecret)
	admin.Data["password"] = []byte("operator-chosen")
	e.update(admin)
	jwt := e.get(jwtSecret)
	delete(jwt.Data, "app-key")
	jwt.Labels["team"] = "video"
	e.update(jwt)

	res := e.ensure(p, nil)
	checkResult(t, res, false, nil, map[string][]string{jwtSecret: {"app-key"}})
	if e.counter.mutating() != 1 || e.counter.count("patch") != 1 {
		t.Errorf("requests %s, want one patch and no other writes", e.counter)
	}
	if got := e.get(adminSecret).Data["password"]; string(got) != "operator-chosen" {
		t.Error("the operator's password was changed")
	}
	jwt = e.get(jwtSecret)
	if string(jwt.Data["app-secret"]) != string(before[jwtSecret]["app-secret"]) {
		t.Error("app-secret changed while app-key was added")
	}
	checkAlphabet(t, "added app-key", jwt.Data["app-key"], hexDigits, 64)
	if string(jwt.Data["app-key"]) == string(before[jwtSecret]["app-key"]) {
		t.Error("the added app-key equals the deleted one")
	}
	if jwt.Labels["team"] != "video" || len(jwt.Labels) != 4 {
		t.Errorf("labels changed: %v", jwt.Labels)
	}
	if !equalData(e.get(tlsSecret).Data, before[tlsSecret]) {
		t.Error("the certificate changed")
	}

	// Healed: nothing more to do.
	checkResult(t, e.ensure(p, nil), false, nil, nil)
	e.expectNoWrites(1)
}

func TestEnsureRecreatesADeletedSecret(t *testing.T) {
	e := newEnv(t)
	p := testPlan(e.ns)
	e.ensure(p, nil)
	before := e.snapshot()

	for _, name := range []string{adminSecret, tlsSecret} {
		if err := e.client.CoreV1().Secrets(e.ns).Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	res := e.ensure(p, nil)
	checkResult(t, res, false, []string{adminSecret, tlsSecret}, nil)
	if !slices.Equal(res.Changed(), []string{adminSecret, tlsSecret}) {
		t.Errorf("Changed() = %v", res.Changed())
	}
	// Two Gets for the Secrets the List did not return.
	if e.counter.count("create") != 2 || e.counter.mutating() != 2 || e.counter.count("get") != 3 {
		t.Errorf("requests %s, want 2 creates, 3 gets", e.counter)
	}
	after := e.snapshot()
	if string(after[adminSecret]["password"]) == string(before[adminSecret]["password"]) {
		t.Error("the recreated password equals the deleted one")
	}
	if string(after[tlsSecret]["ca.crt"]) == string(before[tlsSecret]["ca.crt"]) {
		t.Error("the recreated certificate equals the deleted one")
	}
	if !equalData(after[jwtSecret], before[jwtSecret]) {
		t.Error("a Secret that was not deleted changed")
	}
	verifyTLS(t, after[tlsSecret], time.Now(), []string{"demo.example.org"}, nil)
}

func TestEnsureRespectsAHandMadeSecret(t *testing.T) {
	e := newEnv(t)
	p := testPlan(e.ns)
	// Before the first apply, an operator provides their own values, without labels.
	e.create(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: jwtSecret},
		Data:       map[string][]byte{"app-secret": []byte("operator-secret"), "extra": []byte("x")},
	})
	own, err := selfSignedTLS(rand.Reader, "operator", []string{"demo.example.org"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	delete(own, "ca.crt") // e.g. a certificate of a public CA
	e.create(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: tlsSecret},
		Type:       corev1.SecretTypeTLS,
		Data:       own,
	})

	res := e.ensure(p, nil)
	checkResult(t, res, false, []string{adminSecret}, map[string][]string{jwtSecret: {"app-key"}})
	jwt := e.get(jwtSecret)
	if string(jwt.Data["app-secret"]) != "operator-secret" || string(jwt.Data["extra"]) != "x" {
		t.Error("the operator's values were changed")
	}
	checkAlphabet(t, "added app-key", jwt.Data["app-key"], hexDigits, 64)
	if len(jwt.Labels) != 0 || len(jwt.Annotations) != 0 {
		t.Errorf("the hand-made Secret got labels %v, annotations %v", jwt.Labels, jwt.Annotations)
	}
	tls := e.get(tlsSecret)
	if !equalData(tls.Data, own) {
		t.Errorf("the operator's certificate was changed: keys %v", slices.Sorted(maps.Keys(tls.Data)))
	}

	// The List cannot see the hand-made Secrets: they are read one by one.
	checkResult(t, e.ensure(p, nil), false, nil, nil)
	e.expectNoWrites(3) // the namespace and the two hand-made Secrets
}

func TestEnsureCreatesTheNamespace(t *testing.T) {
	c := cluster.FromTest(t)
	client, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	ns := "secrets-new-" + hex.EncodeToString(suffix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns, err)
		}
	})

	m := &Manager{Client: client}
	res, err := m.Ensure(t.Context(), testPlan(ns), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, true, allSecrets(), nil)
	got, err := client.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels[LabelManagedBy] != "platzwart" {
		t.Errorf("namespace labels %v", got.Labels)
	}
	s, err := client.CoreV1().Secrets(ns).Get(t.Context(), adminSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(s.ManagedFields, func(f metav1.ManagedFieldsEntry) bool { return f.Manager == DefaultFieldOwner }) {
		t.Errorf("not managed by the default field owner %s", DefaultFieldOwner)
	}
}

// TestEnsureKeepsWhatAConcurrentCreatorWrote lets another writer create a Secret just
// before Ensure does: Ensure must take theirs and only add what it lacks.
func TestEnsureKeepsWhatAConcurrentCreatorWrote(t *testing.T) {
	e := newEnv(t)
	var once sync.Once
	e.counter.setBefore(func(verb, resource string) {
		if verb != "create" || resource != "secrets" {
			return
		}
		// The first Secret of the plan is created first.
		once.Do(func() {
			e.create(&corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: jwtSecret},
				Data:       map[string][]byte{"app-secret": []byte("theirs")},
			})
		})
	})
	res := e.ensure(testPlan(e.ns), nil)
	checkResult(t, res, false, []string{adminSecret, tlsSecret}, map[string][]string{jwtSecret: {"app-key"}})
	if e.counter.count("create") != 3 || e.counter.count("patch") != 1 {
		t.Errorf("requests %s, want 3 creates (one refused) and a patch", e.counter)
	}
	if got := e.get(jwtSecret).Data["app-secret"]; string(got) != "theirs" {
		t.Error("the concurrent writer's value was overwritten")
	}
}

// TestEnsureKeepsWhatAConcurrentUpdaterWrote lets another writer add the missing key
// between Ensure's read and its patch: the patch must fail on the resourceVersion and
// the other writer's value stay.
func TestEnsureKeepsWhatAConcurrentUpdaterWrote(t *testing.T) {
	e := newEnv(t)
	p := testPlan(e.ns)
	e.ensure(p, nil)
	jwt := e.get(jwtSecret)
	delete(jwt.Data, "app-key")
	e.update(jwt)

	var once sync.Once
	e.counter.setBefore(func(verb, resource string) {
		if verb != "patch" {
			return
		}
		once.Do(func() {
			s := e.get(jwtSecret)
			s.Data["app-key"] = []byte("theirs")
			e.update(s)
		})
	})
	res := e.ensure(p, nil)
	checkResult(t, res, false, nil, nil)
	if e.counter.count("patch") != 1 || e.counter.mutating() != 1 {
		t.Errorf("requests %s, want one (refused) patch", e.counter)
	}
	if got := e.get(jwtSecret).Data["app-key"]; string(got) != "theirs" {
		t.Error("the concurrent writer's value was overwritten")
	}
}

// TestEnsureConcurrently runs several Ensures at once: each Secret is created exactly
// once and reported by exactly one of them.
func TestEnsureConcurrently(t *testing.T) {
	e := newEnv(t)
	const n = 6
	results := make([]Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m := &Manager{Client: e.client}
			results[i], errs[i] = m.Ensure(t.Context(), testPlan(e.ns), nil)
		})
	}
	wg.Wait()
	created := map[string]int{}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Ensure %d: %v", i, errs[i])
		}
		if len(results[i].KeysAdded) != 0 {
			t.Errorf("Ensure %d added keys %v", i, results[i].KeysAdded)
		}
		for _, name := range results[i].Created {
			created[name]++
		}
	}
	for _, name := range allSecrets() {
		if created[name] != 1 {
			t.Errorf("%s reported created %d times", name, created[name])
		}
	}
	verifyTLS(t, e.get(tlsSecret).Data, time.Now(), []string{"demo.example.org"}, nil)
}

// TestEnsureRefusesAnIncompleteCertificate: a certificate without its key cannot be
// completed; the error names the Secret and keys but no value, and the other Secrets
// are still created.
func TestEnsureRefusesAnIncompleteCertificate(t *testing.T) {
	e := newEnv(t)
	const value = "PRIVATE-VALUE-1234"
	e.create(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: tlsSecret},
		Data:       map[string][]byte{"tls.crt": []byte(value)},
	})
	res, err := e.manager.Ensure(t.Context(), testPlan(e.ns), nil)
	want := fmt.Sprintf(`secret "demo-tls" in namespace %q: has tls.crt but lacks ca.crt, tls.key`, e.ns)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
	if strings.Contains(err.Error(), value) {
		t.Errorf("the error contains the Secret's value: %v", err)
	}
	checkResult(t, res, false, []string{jwtSecret, adminSecret}, nil)
	if got := e.get(tlsSecret).Data; len(got) != 1 || string(got["tls.crt"]) != value {
		t.Error("the incomplete Secret was changed")
	}
}

// TestEnsureRejectsABadPlanBeforeAnyRequest: plan errors are found before the cluster
// is touched.
func TestEnsureRejectsABadPlanBeforeAnyRequest(t *testing.T) {
	client, counter := newCountingClient(t, &rest.Config{Host: "http://127.0.0.1:1"})
	m := &Manager{Client: client}
	p := testPlan("demo")
	p.Secrets = append(p.Secrets,
		plan.Secret{Name: "demo-x", Type: "Opaque", Keys: map[string]catalog.Generator{"k": {Format: "base64"}}},
		plan.Secret{Name: "demo-x", Type: "Opaque"},
		plan.Secret{Name: "demo-y", Type: "kubernetes.io/tls"},
		plan.Secret{Name: "demo-z", Type: "kubernetes.io/basic-auth"},
		// Key formats are valid: they must not be reported.
		plan.Secret{Name: "demo-keys", Type: "Opaque", Keys: map[string]catalog.Generator{"rsa": {Format: "rsa"}, "ec": {Format: "ecdsa-p256"}}},
	)
	_, err := m.Ensure(t.Context(), p, nil)
	if err != nil && strings.Contains(err.Error(), "demo-keys") {
		t.Errorf("valid key generators refused: %v", err)
	}
	for _, want := range []string{
		`secrets[3] "demo-x": key "k": unknown format "base64"`,
		`secrets[4] "demo-x": listed twice`,
		`secrets[5] "demo-y": a kubernetes.io/tls Secret needs valid DNS names: no DNS names`,
		`secrets[6] "demo-z": unknown type "kubernetes.io/basic-auth"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one containing %q", err, want)
		}
	}
	if counter.total() != 0 {
		t.Errorf("requests were made: %s", counter)
	}
	if _, err := m.Ensure(t.Context(), nil, nil); err == nil {
		t.Error("no error for a nil plan")
	}
	if _, err := (&Manager{}).Ensure(t.Context(), testPlan("demo"), nil); err == nil {
		t.Error("no error without a client")
	}
}
