// Package preflight checks a whole change of a workplace against the cluster before
// anything is written: every object of every release to install or upgrade, hooks
// included, is sent to the API server as a server-side dry run, and the hosts and
// NodePorts the releases claim are compared with what other owners in the cluster
// already claim. Every problem of every release is reported at once, as an [*Error]
// with one [Finding] per object.
//
// It only reads and dry-runs: it makes no request that changes the cluster.
package preflight

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"k8s.io/apimachinery/pkg/api/equality"
	"sort"
	"strings"

	jsonpatch "github.com/evanphx/json-patch"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/render"
)

// FieldManager is the field manager of the dry-run requests.
const FieldManager = "platzwart-preflight"

// Helm's ownership annotations on the objects of a release.
const (
	annotationReleaseName      = "meta.helm.sh/release-name"
	annotationReleaseNamespace = "meta.helm.sh/release-namespace"
)

// Check names what a finding failed.
type Check string

// Checks.
const (
	// CheckDryRun: the API server refused the object in a server-side dry run.
	CheckDryRun Check = "dry-run"
	// CheckOwner: the object exists and belongs to another release or to no release.
	CheckOwner Check = "owner"
	// CheckHost: another Ingress or HTTPRoute in the cluster claims the same host.
	CheckHost Check = "host"
	// CheckNodePort: another Service in the cluster holds the same NodePort.
	CheckNodePort Check = "nodePort"
)

// Object identifies a Kubernetes object.
type Object struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Finding is one problem with one object of one release.
type Finding struct {
	// Component and Release the object belongs to.
	Component string `json:"component"`
	Release   string `json:"release"`
	// Object is the object of the release.
	Object Object `json:"object"`
	// Hook is true when the object is a Helm hook.
	Hook bool `json:"hook,omitempty"`
	// Check is what failed.
	Check Check `json:"check"`
	// Reason is the API server's reason, or what the other claimant holds.
	Reason string `json:"reason"`
	// Other is the object that already claims the host or NodePort (nil otherwise).
	Other *Object `json:"other,omitempty"`
}

func (f Finding) String() string {
	hook := ""
	if f.Hook {
		hook = " (hook)"
	}
	return fmt.Sprintf("component %q: %s%s: %s: %s", f.Component, f.Object, hook, f.Check, f.Reason)
}

// Error is the refusal of a change: every finding of every release.
type Error struct {
	// Workplace and Namespace of the plan.
	Workplace string `json:"workplace"`
	Namespace string `json:"namespace"`
	// Findings, by release in plan order, then by object.
	Findings []Finding `json:"findings"`
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "preflight of workplace %s/%s: %d problem(s), nothing was written:", e.Namespace, e.Workplace, len(e.Findings))
	for _, f := range e.Findings {
		b.WriteString("\n  ")
		b.WriteString(f.String())
	}
	return b.String()
}

// Checker runs the checks against one cluster.
type Checker struct {
	Cluster *kube.Cluster
}

// Input is what one preflight checks.
type Input struct {
	// Workplace and Namespace of the plan.
	Workplace string
	Namespace string
	// Manifests of the releases that will be installed or upgraded.
	Manifests []*render.Manifest
	// Own are the names of every release of the workplace (planned or to be
	// uninstalled): hosts and ports their objects hold are not conflicts.
	Own []string
	// Previous maps a release being upgraded to the manifest of its current revision:
	// an existing object is dry-run with the patch Helm's upgrade will send, computed
	// from that manifest, the new object and the live one.
	Previous map[string]string
}

// item is one object to check.
type item struct {
	rel  *render.Manifest
	obj  *unstructured.Unstructured
	hook bool
	// namespaced is false for cluster-scoped kinds.
	namespaced bool
	gvr        schema.GroupVersionResource
	// previous is the object in the release's current revision (nil when new).
	previous *unstructured.Unstructured
}

func (it item) id() Object {
	return Object{Kind: it.obj.GetKind(), Namespace: it.obj.GetNamespace(), Name: it.obj.GetName()}
}

func (it item) finding(c Check, reason string) Finding {
	return Finding{Component: it.rel.Component, Release: it.rel.Release, Object: it.id(), Hook: it.hook, Check: c, Reason: reason}
}

// Check runs every check and returns nil, an [*Error] listing every finding, or
// another error when the cluster could not be asked.
func (c *Checker) Check(ctx context.Context, in Input) error {
	var findings []Finding
	var items []item
	for _, m := range in.Manifests {
		its, fs, err := c.parse(m, in.Namespace)
		if err != nil {
			return err
		}
		items = append(items, its...)
		findings = append(findings, fs...)
	}
	nsExists, err := c.namespaceExists(ctx, in.Namespace)
	if err != nil {
		return err
	}
	previous, err := previousObjects(in.Previous)
	if err != nil {
		return err
	}
	for _, it := range items {
		it.previous = previous[it.rel.Release][objectKey(it.obj)]
		if unchanged(it) {
			// The cluster took this very object at the release's current revision, and
			// Helm's upgrade sends no change of it (a three-way patch from an equal
			// previous and target only undoes hand edits, which drift correction does
			// as well): no read, no dry run.
			continue
		}
		f, err := c.dryRun(ctx, it, nsExists)
		if err != nil {
			return err
		}
		findings = append(findings, f...)
	}
	own := map[string]bool{}
	for _, r := range in.Own {
		own[r] = true
	}
	hf, err := c.hosts(ctx, items, in.Namespace, own)
	if err != nil {
		return err
	}
	findings = append(findings, hf...)
	pf, err := c.nodePorts(ctx, items)
	if err != nil {
		return err
	}
	findings = append(findings, pf...)
	if len(findings) == 0 {
		return nil
	}
	order := map[string]int{}
	for i, m := range in.Manifests {
		order[m.Release] = i
	}
	sort.SliceStable(findings, func(i, j int) bool { return order[findings[i].Release] < order[findings[j].Release] })
	return &Error{Workplace: in.Workplace, Namespace: in.Namespace, Findings: findings}
}

// parse reads the objects of a release's manifest and hooks. A kind the cluster does
// not serve is a finding.
func (c *Checker) parse(m *render.Manifest, namespace string) ([]item, []Finding, error) {
	var items []item
	var findings []Finding
	add := func(doc string, hook bool) error {
		objs, err := decode(doc)
		if err != nil {
			return fmt.Errorf("release %s: reading the rendered manifest: %w", m.Release, err)
		}
		for _, u := range objs {
			it := item{rel: m, obj: u, hook: hook}
			gvk := u.GroupVersionKind()
			mapping, err := c.Cluster.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				if u.GetNamespace() == "" {
					u.SetNamespace(namespace)
				}
				reason := err.Error()
				if meta.IsNoMatchError(err) {
					reason = fmt.Sprintf("the cluster serves no kind %s in %s", gvk.Kind, gvk.GroupVersion())
				}
				findings = append(findings, it.finding(CheckDryRun, reason))
				continue
			}
			it.gvr = mapping.Resource
			it.namespaced = mapping.Scope.Name() == meta.RESTScopeNameNamespace
			if it.namespaced && u.GetNamespace() == "" {
				u.SetNamespace(namespace)
			}
			items = append(items, it)
		}
		return nil
	}
	if err := add(m.Manifest, false); err != nil {
		return nil, nil, err
	}
	for _, h := range m.Hooks {
		if err := add(h.Manifest, true); err != nil {
			return nil, nil, err
		}
	}
	return items, findings, nil
}

// decode splits a YAML stream into objects, skipping empty documents.
func decode(stream string) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(stream)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096).Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				continue
			}
			return nil, err
		}
		if len(u.Object) == 0 {
			continue
		}
		out = append(out, u)
	}
}

func (c *Checker) namespaceExists(ctx context.Context, ns string) (bool, error) {
	_, err := c.Cluster.Clientset.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("preflight: namespace %q: %w", ns, err)
}

// dryRun sends one object to the API server as a dry run, the way Helm will write
// it: a hook is created anew (Helm deletes the old one first), a manifest object is
// created when missing and changed (server-side apply, forced) when it exists; an
// existing one must belong to this release.
//
// When the namespace does not exist yet (the reconciler creates it after the
// preflight), namespaced objects are dry-run created in the namespace "default":
// the API server refuses any create in a missing namespace, even a dry run. What
// depends on the namespace itself (its quotas, limit ranges, Pod Security labels)
// is then first checked by the real install.
func (c *Checker) dryRun(ctx context.Context, it item, nsExists bool) ([]Finding, error) {
	obj := it.obj.DeepCopy()
	if it.namespaced && !nsExists {
		obj.SetNamespace(metav1.NamespaceDefault)
		err := c.Cluster.Client.Create(ctx, obj, client.DryRunAll, client.FieldOwner(FieldManager))
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return []Finding{it.finding(CheckDryRun, reason(err))}, nil
		}
		return nil, nil
	}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(obj.GroupVersionKind())
	err := c.Cluster.Client.Get(ctx, client.ObjectKeyFromObject(obj), live)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		if apierrors.IsForbidden(err) {
			return []Finding{it.finding(CheckDryRun, reason(err))}, nil
		}
		return nil, fmt.Errorf("preflight: reading %s: %w", it.id(), err)
	}
	switch {
	case it.hook && exists:
		// Helm deletes the hook before creating it again: check a create of the same
		// object under a generated name.
		obj.SetName("")
		obj.SetGenerateName(generateName(it.obj.GetName()))
		err = c.Cluster.Client.Create(ctx, obj, client.DryRunAll, client.FieldOwner(FieldManager))
	case !exists:
		err = c.Cluster.Client.Create(ctx, obj, client.DryRunAll, client.FieldOwner(FieldManager))
	default:
		if f, bad := ownerFinding(it, live); bad {
			return []Finding{f}, nil
		}
		var patch []byte
		var pt types.PatchType
		if patch, pt, err = HelmPatch(it.previous, obj, live); err != nil {
			return nil, fmt.Errorf("preflight: patch for %s: %w", it.id(), err)
		}
		err = c.Cluster.Client.Patch(ctx, live, client.RawPatch(pt, patch), client.DryRunAll, client.FieldOwner(FieldManager))
	}
	if err != nil {
		return []Finding{it.finding(CheckDryRun, reason(err))}, nil
	}
	return nil, nil
}

// HelmPatch computes the patch Helm v3's upgrade sends for an existing object
// (helm.sh/helm/v3 pkg/kube/client.go createPatch): for the built-in kinds a
// three-way strategic merge patch from the previous revision's object, the new one
// and the live one, so list entries the chart dropped (a renamed port) are removed;
// for other kinds a JSON merge patch from the previous object to the new one.
// Server-side apply under another field manager would keep the entries Helm owns and
// report duplicates that Helm's upgrade never creates.
func HelmPatch(previous, target, live *unstructured.Unstructured) ([]byte, types.PatchType, error) {
	oldData := []byte("null")
	if previous != nil {
		var err error
		if oldData, err = json.Marshal(previous.Object); err != nil {
			return nil, "", err
		}
	}
	newData, err := json.Marshal(target.Object)
	if err != nil {
		return nil, "", err
	}
	typed, err := clientgoscheme.Scheme.New(target.GroupVersionKind())
	if err != nil {
		// Not a built-in kind: Helm's generic JSON merge patch.
		patch, err := jsonpatch.CreateMergePatch(oldData, newData)
		return patch, types.MergePatchType, err
	}
	liveData, err := json.Marshal(live.Object)
	if err != nil {
		return nil, "", err
	}
	meta, err := strategicpatch.NewPatchMetaFromStruct(typed)
	if err != nil {
		return nil, "", err
	}
	patch, err := strategicpatch.CreateThreeWayMergePatch(oldData, newData, liveData, meta, true)
	return patch, types.StrategicMergePatchType, err
}

// unchanged reports whether an object of a release (not a hook: Helm creates hooks
// anew) is the same in the new render as in the release's current revision, apart
// from the namespace the stored manifest may leave out.
func unchanged(it item) bool {
	if it.hook || it.previous == nil {
		return false
	}
	prev := it.previous.DeepCopy()
	prev.SetNamespace(it.obj.GetNamespace())
	return equality.Semantic.DeepEqual(prev.Object, it.obj.Object)
}

// objectKey identifies an object within a release: kind and name (a release's
// objects live in its namespace; Helm's stored manifest often names none).
func objectKey(o *unstructured.Unstructured) string {
	return o.GroupVersionKind().GroupKind().String() + "/" + o.GetName()
}

// previousObjects decodes the previous manifests, per release and object.
func previousObjects(manifests map[string]string) (map[string]map[string]*unstructured.Unstructured, error) {
	out := map[string]map[string]*unstructured.Unstructured{}
	for rel, m := range manifests {
		objs, err := decode(m)
		if err != nil {
			return nil, fmt.Errorf("preflight: the current revision of %s: %w", rel, err)
		}
		out[rel] = map[string]*unstructured.Unstructured{}
		for _, o := range objs {
			out[rel][objectKey(o)] = o
		}
	}
	return out, nil
}

// ownerFinding reports an existing object Helm would refuse to take over for this
// release: one of another release or of none.
func ownerFinding(it item, live *unstructured.Unstructured) (Finding, bool) {
	a := live.GetAnnotations()
	name, ns := a[annotationReleaseName], a[annotationReleaseNamespace]
	switch {
	case name == it.rel.Release && (ns == "" || ns == it.obj.GetNamespace() || !it.namespaced):
		return Finding{}, false
	case name == "":
		return it.finding(CheckOwner, "exists and belongs to no Helm release; it is never taken over: remove or rename it"), true
	}
	return it.finding(CheckOwner, fmt.Sprintf("exists and belongs to Helm release %s/%s", ns, name)), true
}

// generateName returns a generateName prefix for name within the 63 characters most
// names may have (the API server appends 5).
func generateName(name string) string {
	if len(name) > 50 {
		name = name[:50]
	}
	return name + "-"
}

// reason extracts the API server's message.
func reason(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Message
	}
	return err.Error()
}

// hosts finds hosts of the change's Ingresses and HTTPRoutes that an Ingress or
// HTTPRoute of another owner in the cluster already claims.
func (c *Checker) hosts(ctx context.Context, items []item, namespace string, own map[string]bool) ([]Finding, error) {
	type claim struct {
		it   item
		host string
	}
	var claims []claim
	mine := map[Object]bool{}
	for _, it := range items {
		if it.hook {
			continue
		}
		hs := hostsOf(it.obj)
		for _, h := range hs {
			claims = append(claims, claim{it, h})
		}
		if len(hs) > 0 {
			mine[it.id()] = true
		}
	}
	if len(claims) == 0 {
		return nil, nil
	}
	var others []*unstructured.Unstructured
	for _, gvk := range []schema.GroupVersionKind{
		{Group: "networking.k8s.io", Version: "v1", Kind: "IngressList"},
		{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRouteList"},
	} {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk)
		if err := c.Cluster.Client.List(ctx, list); err != nil {
			if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
				continue // the cluster does not serve the kind: nothing can claim a host with it
			}
			return nil, fmt.Errorf("preflight: listing %s in all namespaces: %w", strings.TrimSuffix(gvk.Kind, "List"), err)
		}
		for i := range list.Items {
			others = append(others, &list.Items[i])
		}
	}
	byHost := map[string][]Object{}
	for _, o := range others {
		id := Object{Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}
		if mine[id] {
			continue
		}
		if o.GetNamespace() == namespace && own[o.GetAnnotations()[annotationReleaseName]] {
			continue
		}
		if o.GetDeletionTimestamp() != nil {
			continue
		}
		for _, h := range hostsOf(o) {
			byHost[h] = append(byHost[h], id)
		}
	}
	var out []Finding
	gone := c.goingAway()
	for _, cl := range claims {
		for _, other := range byHost[cl.host] {
			if gone(ctx, other.Namespace) {
				continue
			}
			f := cl.it.finding(CheckHost, fmt.Sprintf("host %q is already claimed by %s", cl.host, other))
			f.Other = &other
			out = append(out, f)
		}
	}
	return out, nil
}

// goingAway returns a function reporting whether a namespace is being deleted (its
// objects go with it, so what they claim is not a conflict), asking once per
// namespace. A namespace that cannot be read counts as staying.
func (c *Checker) goingAway() func(ctx context.Context, ns string) bool {
	known := map[string]bool{}
	return func(ctx context.Context, ns string) bool {
		if ns == "" {
			return false
		}
		if v, ok := known[ns]; ok {
			return v
		}
		n, err := c.Cluster.Clientset.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		v := err == nil && (n.DeletionTimestamp != nil || n.Status.Phase == corev1.NamespaceTerminating)
		known[ns] = v
		return v
	}
}

// hostsOf returns the hosts an Ingress (spec.rules[].host) or HTTPRoute
// (spec.hostnames) claims, lower-cased and without duplicates.
func hostsOf(u *unstructured.Unstructured) []string {
	seen := map[string]bool{}
	var out []string
	add := func(h string) {
		h = strings.ToLower(strings.TrimSpace(h))
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	switch u.GroupVersionKind().GroupKind() {
	case schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"}:
		rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
		for _, r := range rules {
			if m, ok := r.(map[string]any); ok {
				if h, ok := m["host"].(string); ok {
					add(h)
				}
			}
		}
	case schema.GroupKind{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute"}:
		names, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "hostnames")
		for _, h := range names {
			add(h)
		}
	}
	return out
}

// nodePorts finds NodePorts the change's Services ask for that a Service of another
// name holds.
func (c *Checker) nodePorts(ctx context.Context, items []item) ([]Finding, error) {
	type want struct {
		it   item
		port int64
	}
	var wants []want
	mine := map[Object]bool{}
	for _, it := range items {
		if it.hook || it.obj.GroupVersionKind().GroupKind() != (schema.GroupKind{Kind: "Service"}) {
			continue
		}
		ports, _, _ := unstructured.NestedSlice(it.obj.Object, "spec", "ports")
		for _, p := range ports {
			m, ok := p.(map[string]any)
			if !ok {
				continue
			}
			if n, ok := number(m["nodePort"]); ok && n != 0 {
				wants = append(wants, want{it, n})
				mine[it.id()] = true
			}
		}
	}
	if len(wants) == 0 {
		return nil, nil
	}
	list, err := c.Cluster.Clientset.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("preflight: listing Services in all namespaces: %w", err)
	}
	held := map[int64][]Object{}
	for _, s := range list.Items {
		id := Object{Kind: "Service", Namespace: s.Namespace, Name: s.Name}
		if mine[id] {
			continue
		}
		for _, p := range s.Spec.Ports {
			if p.NodePort != 0 && s.Spec.Type != corev1.ServiceTypeClusterIP {
				held[int64(p.NodePort)] = append(held[int64(p.NodePort)], id)
			}
		}
	}
	var out []Finding
	// Two Services of the change asking for one port: the second install would fail.
	first := map[int64]item{}
	for _, w := range wants {
		prev, dup := first[w.port]
		if !dup {
			first[w.port] = w.it
			continue
		}
		if prev.id() != w.it.id() {
			other := prev.id()
			f := w.it.finding(CheckNodePort, fmt.Sprintf("NodePort %d is also asked for by %s (component %q)", w.port, other, prev.rel.Component))
			f.Other = &other
			out = append(out, f)
		}
	}
	for _, w := range wants {
		for _, other := range held[w.port] {
			f := w.it.finding(CheckNodePort, fmt.Sprintf("NodePort %d is already held by %s", w.port, other))
			f.Other = &other
			out = append(out, f)
		}
	}
	return out, nil
}

func number(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case float64:
		return int64(n), true
	case int:
		return int64(n), true
	}
	return 0, false
}
