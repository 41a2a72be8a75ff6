package load

import (
	"strings"
	"testing"
)

// TestWorkplaceKubeConfig: spec.kubeConfig.secretRef names a Secret (a DNS-1123
// subdomain) and optionally a Secret key; anything else is refused naming file,
// document and field, and the Secret cannot be looked for in another namespace.
func TestWorkplaceKubeConfig(t *testing.T) {
	doc := func(kubeConfig string) string {
		return strings.Replace(testWorkplace, "profile: minikube}", "profile: minikube, kubeConfig: "+kubeConfig+"}", 1)
	}
	for _, ok := range []string{
		"{secretRef: {name: remote-cluster}}",
		"{secretRef: {name: clusters.example.org, key: value.yaml}}",
		"{secretRef: {name: remote, key: kubeconfig_admin-1}}",
	} {
		repo, err := loadWithin(t, repoDir(t, map[string]string{"workplace.yaml": doc(ok)}), DefaultLimits())
		if err != nil {
			t.Errorf("kubeConfig %s: %v", ok, err)
			continue
		}
		if ref := repo.Workplaces[0].Spec.KubeConfig; ref == nil || ref.SecretRef.Name == "" {
			t.Errorf("kubeConfig %s: not decoded: %+v", ok, ref)
		}
	}
	const where = `repo/workplace.yaml: Workplace "demo": `
	for bad, want := range map[string]string{
		"{}":                                            "spec.kubeConfig.secretRef.name: required",
		"{secretRef: {key: value}}":                     "spec.kubeConfig.secretRef.name: required",
		"{secretRef: {name: Remote}}":                   `spec.kubeConfig.secretRef.name: invalid Secret name "Remote"`,
		"{secretRef: {name: tenant/remote}}":            `spec.kubeConfig.secretRef.name: invalid Secret name "tenant/remote"`,
		"{secretRef: {name: -remote}}":                  `spec.kubeConfig.secretRef.name: invalid Secret name "-remote"`,
		"{secretRef: {name: remote, key: a/b}}":         `spec.kubeConfig.secretRef.key: invalid Secret key "a/b"`,
		"{secretRef: {name: remote, key: ..}}":          `spec.kubeConfig.secretRef.key: invalid Secret key ".."`,
		`{secretRef: {name: remote, key: "a b"}}`:       `spec.kubeConfig.secretRef.key: invalid Secret key "a b"`,
		"{secretRef: {name: remote, namespace: other}}": "spec.kubeConfig.secretRef.namespace: unknown field",
	} {
		_, err := loadWithin(t, repoDir(t, map[string]string{"workplace.yaml": doc(bad)}), DefaultLimits())
		if err == nil || !strings.Contains(err.Error(), where+want) {
			t.Errorf("kubeConfig %s: %v; want %q", bad, err, where+want)
		}
	}
}
