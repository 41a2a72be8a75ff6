package secrets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/platzwart/platzwart/reconciler/plan"
)

// AnnotationVersions is the pod template annotation that carries, on every Deployment,
// StatefulSet and DaemonSet of a release, a hash over the content of the generated
// Secrets the release references. A regenerated or rotated Secret changes it, so the
// release's digest changes (it is upgraded, and a provider's hook Jobs run again) and
// its pods roll. It is a hash of hashes: no value can be recovered from it.
const AnnotationVersions = "platzwart.io/secret-versions"

// Missing is the version of a planned Secret that does not exist (yet).
const Missing = "missing"

// Versions maps the name of each Secret of a plan to a hash of its content
// ("sha256:<hex>" over its keys and values in key order), or [Missing].
type Versions map[string]string

// Versions reads the plan's Secrets and returns their content versions. It only reads:
// one List of the workplace's generated Secrets and one Get per planned Secret the List
// did not return (a hand-made one). The namespace may not exist.
func (m *Manager) Versions(ctx context.Context, p *plan.Plan) (Versions, error) {
	if err := checkPlan(p); err != nil {
		return nil, err
	}
	selector := labels.SelectorFromSet(labels.Set{LabelWorkplace: p.Workplace, LabelManagedBy: ManagedBy}).String()
	list, err := m.Client.CoreV1().Secrets(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list the secrets of workplace %q in namespace %q: %w", p.Workplace, p.Namespace, err)
	}
	listed := make(map[string]*corev1.Secret, len(list.Items))
	for i := range list.Items {
		listed[list.Items[i].Name] = &list.Items[i]
	}
	out := make(Versions, len(p.Secrets))
	for _, s := range p.Secrets {
		cur := listed[s.Name]
		if cur == nil {
			if cur, err = m.getSecret(ctx, p.Namespace, s.Name); err != nil {
				return nil, fmt.Errorf("secret %q in namespace %q: %w", s.Name, p.Namespace, err)
			}
		}
		if cur == nil {
			out[s.Name] = Missing
			continue
		}
		out[s.Name] = contentVersion(cur.Data)
	}
	return out, nil
}

// contentVersion hashes a Secret's data: each key and value, length-prefixed, in key
// order.
func contentVersion(data map[string][]byte) string {
	h := sha256.New()
	for _, k := range sortedKeys(data) {
		fmt.Fprintf(h, "%d:%s%d:", len(k), k, len(data[k]))
		h.Write(data[k])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Referenced returns the names of the plan's Secrets that a release's values refer to
// (a map whose "name" or "secretName" is the Secret's name: the plan's {name, key}
// references and the routing's TLS Secret), sorted.
func Referenced(p *plan.Plan, rel *plan.Release) []string {
	planned := make(map[string]bool, len(p.Secrets))
	for _, s := range p.Secrets {
		planned[s.Name] = true
	}
	found := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			// {name: <secret>, key: ...} references, and routing.tls.secretName.
			for _, k := range []string{"name", "secretName"} {
				if name, ok := t[k].(string); ok && planned[name] {
					found[name] = true
				}
			}
			for _, e := range t {
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	walk(rel.Values)
	out := make([]string, 0, len(found))
	for n := range found {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// WithVersions returns a copy of p in which every release that references generated
// Secrets carries [AnnotationVersions] in its pod annotations (put on the pod template
// of every workload it renders, found by decoding the manifest: see
// postrender.AnnotatePodTemplates) and a digest recomputed over it. p is not changed.
// A release referencing no Secret of the plan is left as it is; one that renders no
// workload still gets a new digest when a version changes (its hooks run again).
func WithVersions(p *plan.Plan, v Versions) (*plan.Plan, error) {
	out := *p
	out.Releases = make([]*plan.Release, len(p.Releases))
	for i, rel := range p.Releases {
		refs := Referenced(p, rel)
		if len(refs) == 0 {
			out.Releases[i] = rel
			continue
		}
		h := sha256.New()
		for _, name := range refs {
			fmt.Fprintf(h, "%s=%s\n", name, v[name])
		}
		r := *rel
		r.PodAnnotations = maps.Clone(rel.PodAnnotations)
		if r.PodAnnotations == nil {
			r.PodAnnotations = map[string]string{}
		}
		r.PodAnnotations[AnnotationVersions] = "sha256:" + hex.EncodeToString(h.Sum(nil))
		d, err := plan.Digest(&r)
		if err != nil {
			return nil, fmt.Errorf("release %s: digest: %w", rel.Name, err)
		}
		r.Digest = d
		out.Releases[i] = &r
	}
	return &out, nil
}
