package controller

import (
	"context"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/kube"
)

// InstallCRD server-side applies the Workplace CRD and waits until it is established.
// The chart installs it in-cluster; this is for `platzwart controller` run against a
// cluster from outside and for tests.
func InstallCRD(ctx context.Context, c *kube.Cluster) error {
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(platzwart.WorkplaceCRD(), &u.Object); err != nil {
		return fmt.Errorf("workplace CRD: %w", err)
	}
	if err := c.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("installing the Workplace CRD: %w", err)
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		crd := &unstructured.Unstructured{}
		crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
		if err := c.Client.Get(ctx, client.ObjectKey{Name: u.GetName()}, crd); err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == string(apiextensionsv1.Established) && m["status"] == string(apiextensionsv1.ConditionTrue) {
				c.ResetMapper()
				return true, nil
			}
		}
		return false, nil
	})
}
