package release

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LabelCapability names the capability a release fills.
const LabelCapability = "platzwart.io/capability"

// State is what the cluster says of one release of a workplace.
type State struct {
	// Workplace and Namespace of the release.
	Workplace string `json:"workplace"`
	Namespace string `json:"namespace"`
	// Component and Capability it implements.
	Component  string `json:"component"`
	Capability string `json:"capability"`
	// Release name, chart and revision.
	Release  string `json:"release"`
	Chart    string `json:"chart"`
	Revision int    `json:"revision"`
	// Status is Helm's status of the newest revision.
	Status string `json:"status"`
	// Ready is true when every resource is Current (kstatus).
	Ready bool `json:"ready"`
	// Deployed is when the newest revision was deployed.
	Deployed time.Time `json:"deployed"`
	// Message says what is not ready, or Helm's description of a failure.
	Message string `json:"message,omitempty"`
	// Digest is the short release digest recorded with the revision.
	Digest string `json:"digest,omitempty"`
}

// Status reads the releases of a workplace (all workplaces of the namespace when
// workplace is "") and how ready their resources are, with read requests only.
func (e *Engine) Status(ctx context.Context, namespace, workplace string) ([]State, error) {
	cfg, err := e.helmConfig(namespace)
	if err != nil {
		return nil, err
	}
	rels, err := listWorkplace(cfg, workplace)
	if err != nil {
		return nil, err
	}
	var out []State
	for name, d := range rels {
		r := d.latest
		st := State{
			Workplace:  r.Labels[LabelWorkplace],
			Namespace:  namespace,
			Component:  r.Labels[LabelComponent],
			Capability: r.Labels[LabelCapability],
			Release:    name,
			Revision:   r.Version,
			Digest:     r.Labels[LabelDigest],
		}
		if r.Chart != nil && r.Chart.Metadata != nil {
			st.Chart = r.Chart.Metadata.Name + "-" + r.Chart.Metadata.Version
		}
		if r.Info != nil {
			st.Status = r.Info.Status.String()
			st.Deployed = r.Info.LastDeployed.Time
			if r.Info.Status.String() != "deployed" {
				st.Message = r.Info.Description
			}
		}
		ready, msg, err := e.ready(ctx, r.Manifest, namespace)
		if err != nil {
			return nil, fmt.Errorf("release %s/%s: %w", namespace, name, err)
		}
		st.Ready = ready && st.Status == "deployed"
		if msg != "" {
			st.Message = msg
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Release < out[j].Release })
	return out, nil
}

// ready computes kstatus of every resource of a manifest once, without waiting.
func (e *Engine) ready(ctx context.Context, manifest, namespace string) (bool, string, error) {
	set, _, err := objects(manifest, namespace, e.cluster.Mapper)
	if err != nil {
		return false, "", err
	}
	for _, id := range set {
		mapping, err := e.cluster.Mapper.RESTMapping(id.GroupKind)
		if err != nil {
			return false, "", err
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(mapping.GroupVersionKind)
		if err := e.cluster.Client.Get(ctx, client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, u); err != nil {
			return false, fmt.Sprintf("%s %s/%s: %v", id.GroupKind.Kind, id.Namespace, id.Name, err), nil
		}
		res, err := status.Compute(u)
		if err != nil {
			return false, "", err
		}
		if res.Status != status.CurrentStatus {
			msg := fmt.Sprintf("%s %s/%s: %s", id.GroupKind.Kind, id.Namespace, id.Name, res.Message)
			if reason := e.podReasons(ctx, u, namespace); reason != "" {
				msg += ": " + reason
			}
			return false, msg, nil
		}
	}
	return true, "", nil
}

// Revision is one revision of a platzwart release as Helm's storage records it.
type Revision struct {
	// Name of the release.
	Name string `json:"name"`
	// Version is Helm's revision number.
	Version int `json:"version"`
	// Status is Helm's status (deployed, superseded, failed, pending-upgrade, ...).
	Status string `json:"status"`
	// Description is Helm's description ("Upgrade complete", "Rollback to 1", ...).
	Description string `json:"description"`
	// Ready is true when platzwart saw the revision ready (LabelReady).
	Ready bool `json:"ready"`
}

// History returns every stored revision of the platzwart releases of a namespace,
// oldest first per release; it only reads.
func (e *Engine) History(_ context.Context, namespace string) ([]Revision, error) {
	cfg, err := e.helmConfig(namespace)
	if err != nil {
		return nil, err
	}
	all, err := cfg.Releases.Driver.Query(map[string]string{"owner": "helm"})
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, fmt.Errorf("listing releases in namespace %q: %w", namespace, err)
	}
	var out []Revision
	for _, r := range all {
		if r.Labels[LabelWorkplace] == "" {
			continue
		}
		rev := Revision{Name: r.Name, Version: r.Version, Ready: r.Labels[LabelReady] == "true"}
		if r.Info != nil {
			rev.Status, rev.Description = r.Info.Status.String(), r.Info.Description
		}
		out = append(out, rev)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}
