package secrets

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// Labels and annotations on what this package creates.
const (
	// LabelManagedBy is set to [ManagedBy] on generated Secrets and created namespaces.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is the value of [LabelManagedBy].
	ManagedBy = "platzwart"
	// LabelWorkplace names the workplace a generated Secret belongs to.
	LabelWorkplace = "platzwart.io/workplace"
	// LabelComponent names the component a generated Secret belongs to (absent for
	// workplace-wide Secrets such as the TLS certificate).
	LabelComponent = "platzwart.io/component"
	// AnnotationGenerated is "true" on Secrets whose values platzwart generated.
	AnnotationGenerated = "platzwart.io/generated"
)

// DefaultFieldOwner is the field manager of platzwart's writes when the Manager names none.
const DefaultFieldOwner = "platzwart"

// Secret types a plan may ask for.
const (
	typeOpaque = string(corev1.SecretTypeOpaque)
	typeTLS    = string(corev1.SecretTypeTLS)
)

// maxAttempts bounds how often one Secret is read and written again when another
// writer changes it concurrently.
const maxAttempts = 5

// Manager creates the Secrets of workplaces. Its zero value is not usable: Client is
// required.
type Manager struct {
	// Client talks to the cluster.
	Client kubernetes.Interface
	// FieldOwner is the field manager recorded for writes ("" = [DefaultFieldOwner]).
	FieldOwner string
}

// Result says what [Manager.Ensure] wrote: names of Secrets and keys, never values.
type Result struct {
	// NamespaceCreated is true when the namespace did not exist and was created.
	NamespaceCreated bool
	// Created names the Secrets that were created, sorted: on the first apply every
	// Secret, later those that had been deleted. Their values are new, so whatever
	// consumes them must be restarted (or, for a database password, rotated).
	Created []string
	// KeysAdded lists the keys added to Secrets that existed but lacked them, by Secret
	// name, each list sorted.
	KeysAdded map[string][]string
}

// Changed returns the names of the Secrets whose data changed: those created and those
// that got keys added, sorted.
func (r Result) Changed() []string {
	out := slices.Clone(r.Created)
	for name := range r.KeysAdded {
		out = append(out, name)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// Ensure makes every Secret of the plan exist in the plan's namespace with every key
// the plan lists, creating the namespace if it is missing. It never changes a value
// that exists (see the package documentation for the rules). owner, when not nil, is
// set as the owner reference of the Secrets it creates (the Workplace object when
// running as a controller; nil from the CLI); Secrets that exist keep their owners.
//
// Ensure goes on with the other Secrets when one fails, and returns what it did
// together with the joined errors.
func (m *Manager) Ensure(ctx context.Context, p *plan.Plan, owner *metav1.OwnerReference) (Result, error) {
	var res Result
	if m.Client == nil {
		return res, errors.New("secrets: Manager has no Client")
	}
	if err := checkPlan(p); err != nil {
		return res, err
	}
	created, err := kube.EnsureNamespace(ctx, m.Client, p.Namespace, m.fieldOwner())
	if err != nil {
		return res, err
	}
	res.NamespaceCreated = created

	// One List finds the Secrets platzwart generated for this workplace. The selector
	// includes managed-by so that Helm's release records, which carry the workplace
	// label too, are not read.
	selector := labels.SelectorFromSet(labels.Set{LabelWorkplace: p.Workplace, LabelManagedBy: ManagedBy}).String()
	list, err := m.Client.CoreV1().Secrets(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return res, fmt.Errorf("list the secrets of workplace %q in namespace %q: %w", p.Workplace, p.Namespace, err)
	}
	listed := make(map[string]*corev1.Secret, len(list.Items))
	for i := range list.Items {
		listed[list.Items[i].Name] = &list.Items[i]
	}

	var errs []error
	for _, s := range p.Secrets {
		created, added, err := m.ensureSecret(ctx, p, s, listed[s.Name], owner)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret %q in namespace %q: %w", s.Name, p.Namespace, err))
		}
		if created {
			res.Created = append(res.Created, s.Name)
		}
		if len(added) > 0 {
			if res.KeysAdded == nil {
				res.KeysAdded = map[string][]string{}
			}
			res.KeysAdded[s.Name] = added
		}
	}
	sort.Strings(res.Created)
	return res, errors.Join(errs...)
}

// checkPlan rejects a plan whose Secrets cannot be generated, before anything is written.
func checkPlan(p *plan.Plan) error {
	if p == nil {
		return errors.New("secrets: no plan")
	}
	if p.Workplace == "" || p.Namespace == "" {
		return fmt.Errorf("secrets: plan without workplace (%q) or namespace (%q)", p.Workplace, p.Namespace)
	}
	var errs []error
	seen := map[string]bool{}
	for i, s := range p.Secrets {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("plan of workplace %q: secrets[%d] %q: %s", p.Workplace, i, s.Name, fmt.Sprintf(format, args...)))
		}
		switch {
		case s.Name == "":
			bad("no name")
		case seen[s.Name]:
			bad("listed twice")
		}
		seen[s.Name] = true
		switch s.Type {
		case "", typeOpaque:
			for _, k := range sortedKeys(s.Keys) {
				if err := checkGenerator(s.Keys[k]); err != nil {
					bad("key %q: %v", k, err)
				}
			}
		case typeTLS:
			if _, err := permittedDomains(s.DNSNames); err != nil {
				bad("a %s Secret needs valid DNS names: %v", typeTLS, err)
			}
			if len(s.Keys) > 0 {
				bad("a %s Secret has the keys %s, %s and %s, not %s", typeTLS, keyCert, keyKey, keyCA, strings.Join(sortedKeys(s.Keys), ", "))
			}
		default:
			bad("unknown type %q (known: %s, %s)", s.Type, typeOpaque, typeTLS)
		}
	}
	return errors.Join(errs...)
}

// ensureSecret makes one Secret exist with every key of s. cur is the Secret as listed,
// nil when the List did not return it. It reports whether it created the Secret and
// which keys it added to an existing one.
func (m *Manager) ensureSecret(ctx context.Context, p *plan.Plan, s plan.Secret, cur *corev1.Secret, owner *metav1.OwnerReference) (created bool, added []string, err error) {
	client := m.Client.CoreV1().Secrets(p.Namespace)
	if cur == nil {
		// Not ours, or missing: a Secret made by hand has no labels and must be respected.
		if cur, err = m.getSecret(ctx, p.Namespace, s.Name); err != nil {
			return false, nil, err
		}
	}
	for range maxAttempts {
		if cur == nil {
			obj, err := newSecret(p, s, owner)
			if err != nil {
				return false, nil, err
			}
			_, err = client.Create(ctx, obj, metav1.CreateOptions{FieldManager: m.fieldOwner()})
			if err == nil {
				return true, nil, nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return false, nil, fmt.Errorf("create: %w", err)
			}
			// Another writer created it since it was read: keep theirs.
			if cur, err = m.getSecret(ctx, p.Namespace, s.Name); err != nil {
				return false, nil, err
			}
			if cur == nil {
				continue // and deleted it again
			}
		}

		missing, err := missingKeys(s, cur.Data)
		if err != nil || len(missing) == 0 {
			return false, nil, err
		}
		data, err := generateData(p, s, missing)
		if err != nil {
			return false, nil, err
		}
		// A merge patch adds the missing keys only. The resourceVersion makes it fail
		// with a conflict if the Secret changed since it was read, so that a key another
		// writer added meanwhile is not overwritten.
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": cur.ResourceVersion},
			"data":     data,
		})
		if err != nil {
			return false, nil, fmt.Errorf("encode patch: %w", err)
		}
		_, err = client.Patch(ctx, s.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: m.fieldOwner()})
		switch {
		case err == nil:
			return false, missing, nil
		case !apierrors.IsConflict(err) && !apierrors.IsNotFound(err):
			return false, nil, fmt.Errorf("add keys %s: %w", strings.Join(missing, ", "), err)
		}
		// Changed or deleted meanwhile: read it again and start over.
		if cur, err = m.getSecret(ctx, p.Namespace, s.Name); err != nil {
			return false, nil, err
		}
	}
	return false, nil, fmt.Errorf("gave up after %d attempts: the Secret kept changing while it was being completed", maxAttempts)
}

// getSecret reads a Secret; a missing one is nil without an error.
func (m *Manager) getSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	s, err := m.Client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return s, nil
	case apierrors.IsNotFound(err):
		return nil, nil
	}
	return nil, fmt.Errorf("get: %w", err)
}

// missingKeys returns the keys of s that data lacks, sorted.
func missingKeys(s plan.Secret, data map[string][]byte) ([]string, error) {
	if s.Type == typeTLS {
		return missingTLSKeys(data)
	}
	var missing []string
	for _, k := range sortedKeys(s.Keys) {
		if _, ok := data[k]; !ok {
			missing = append(missing, k)
		}
	}
	return missing, nil
}

// generateData generates the values of the given keys of s (all keys for a TLS Secret).
func generateData(p *plan.Plan, s plan.Secret, keys []string) (map[string][]byte, error) {
	if s.Type == typeTLS {
		data, err := selfSignedTLS(rand.Reader, p.Workplace, s.DNSNames, time.Now())
		if err != nil {
			return nil, fmt.Errorf("generate certificate: %w", err)
		}
		return data, nil
	}
	data := make(map[string][]byte, len(keys))
	for _, k := range keys {
		v, err := generate(rand.Reader, s.Keys[k])
		if err != nil {
			return nil, fmt.Errorf("generate key %q: %w", k, err)
		}
		data[k] = v
	}
	return data, nil
}

// newSecret returns the Secret to create for s, with fresh values.
func newSecret(p *plan.Plan, s plan.Secret, owner *metav1.OwnerReference) (*corev1.Secret, error) {
	keys, _ := missingKeys(s, nil) // every key; cannot fail without data
	data, err := generateData(p, s, keys)
	if err != nil {
		return nil, err
	}
	typ := corev1.SecretTypeOpaque
	if s.Type != "" {
		typ = corev1.SecretType(s.Type)
	}
	obj := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        s.Name,
			Namespace:   p.Namespace,
			Labels:      map[string]string{LabelManagedBy: ManagedBy, LabelWorkplace: p.Workplace},
			Annotations: map[string]string{AnnotationGenerated: "true"},
		},
		Type: typ,
		Data: data,
	}
	if s.Component != "" {
		obj.Labels[LabelComponent] = s.Component
	}
	if owner != nil {
		obj.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return obj, nil
}

func (m *Manager) fieldOwner() string {
	if m.FieldOwner != "" {
		return m.FieldOwner
	}
	return DefaultFieldOwner
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
