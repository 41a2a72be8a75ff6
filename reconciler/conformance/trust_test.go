package conformance_test

import (
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// checkTrust: every HTTPS client a component declares trusts the workplace's CA
// when there is a private one, and a consumer that calls another component's public
// URL declares its clients.
func checkTrust(t reporter, cat *catalog.Catalog, p *plan.Plan, w workplace, tm tlsMode) {
	t.Helper()
	selected := map[string]bool{}
	for _, s := range p.Components {
		selected[s.Capability] = true
	}
	for _, r := range p.Releases {
		def := cat.Components[r.Component]
		o := w[r.Name]
		for _, capName := range append(append([]string{}, def.Spec.Consumes...), def.Spec.Optional...) {
			if selected[capName] && slices.Contains(serverSideHTTPS, capName) && len(def.Spec.Trust) == 0 {
				t.Errorf("%s: component %q calls the %s component's public URL over HTTPS but declares no spec.trust clients", r.Name, r.Component, capName)
			}
		}
		// No workload may reference a CA Secret with an empty name.
		for _, pd := range o.pods {
			for _, v := range pd.spec.Volumes {
				if v.Secret != nil && v.Secret.SecretName == "" {
					t.Errorf("%s: %s: volume %s references a Secret with an empty name", r.Name, pd.workload, v.Name)
				}
			}
		}
		for _, tc := range def.Spec.Trust {
			found := false
			for _, pd := range o.pods {
				all := append(append([]corev1.Container{}, pd.spec.InitContainers...), pd.spec.Containers...)
				for _, c := range all {
					if c.Name != tc.Container {
						continue
					}
					found = true
					if tm.caName == "" {
						continue
					}
					if why := trusts(pd, c, tc, tm.caName, tm.caKey); why != "" {
						t.Errorf("%s: %s container %s (%s) does not trust Secret %s key %s: %s", r.Name, pd.workload, c.Name, tc.Runtime, tm.caName, tm.caKey, why)
					}
				}
			}
			if !found {
				t.Errorf("%s: spec.trust names container %q, which no workload of the release has", r.Name, tc.Container)
			}
		}
	}
}

// trusts explains why container c of pd does not have env pointing at the CA file
// (or at a bundle an init container built from it), or returns "".
func trusts(pd pod, c corev1.Container, tc catalog.TrustClient, caName, caKey string) string {
	env := tc.Env
	var file string
	for _, e := range c.Env {
		if e.Name == env {
			if e.ValueFrom != nil {
				return fmt.Sprintf("%s comes from valueFrom, want the file's path", env)
			}
			file = e.Value
		}
	}
	if file == "" {
		return fmt.Sprintf("%s is not set", env)
	}
	if tc.Flag != "" {
		opts := file
		file = ""
		for _, f := range strings.Fields(opts) {
			if v, ok := strings.CutPrefix(f, tc.Flag); ok {
				file = v
			}
		}
		if file == "" {
			return fmt.Sprintf("%s has no %s<path>", env, tc.Flag)
		}
		env += " " + tc.Flag
	}
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if (file == m.MountPath || strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")) && (mount == nil || len(m.MountPath) > len(mount.MountPath)) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		return fmt.Sprintf("%s=%s is on no mounted volume", env, file)
	}
	vol := volume(pd, mount.Name)
	if vol == nil {
		return fmt.Sprintf("volume %s is not in the pod", mount.Name)
	}
	if rel, ok := caFile(vol, caName, caKey); ok {
		want := path.Join(mount.MountPath, rel)
		if mount.SubPath != "" {
			want = ""
			if mount.SubPath == rel {
				want = mount.MountPath
			}
		}
		if want != file {
			return fmt.Sprintf("%s=%s, but the CA is mounted at %s", env, file, orDash(want))
		}
		return ""
	}
	if vol.EmptyDir != nil {
		for _, ic := range pd.spec.InitContainers {
			writes, reads := false, false
			for _, m := range ic.VolumeMounts {
				if m.Name == vol.Name && !m.ReadOnly {
					writes = true
				}
				if v := volume(pd, m.Name); v != nil {
					if _, ok := caFile(v, caName, caKey); ok {
						reads = true
					}
				}
			}
			if writes && reads {
				return ""
			}
		}
		return fmt.Sprintf("%s=%s is on emptyDir %s, which no init container fills from the CA Secret", env, file, vol.Name)
	}
	return fmt.Sprintf("%s=%s is on volume %s, which is neither the CA Secret nor a bundle built from it", env, file, vol.Name)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func volume(pd pod, name string) *corev1.Volume {
	for i, v := range pd.spec.Volumes {
		if v.Name == name {
			return &pd.spec.Volumes[i]
		}
	}
	return nil
}

// caFile returns where in volume v the key caKey of Secret caName appears.
func caFile(v *corev1.Volume, caName, caKey string) (string, bool) {
	fromItems := func(items []corev1.KeyToPath) (string, bool) {
		if len(items) == 0 {
			return caKey, true
		}
		for _, it := range items {
			if it.Key == caKey {
				return it.Path, true
			}
		}
		return "", false
	}
	if v.Secret != nil && v.Secret.SecretName == caName {
		return fromItems(v.Secret.Items)
	}
	if v.Projected != nil {
		for _, s := range v.Projected.Sources {
			if s.Secret != nil && s.Secret.Name == caName {
				return fromItems(s.Secret.Items)
			}
		}
	}
	return "", false
}
