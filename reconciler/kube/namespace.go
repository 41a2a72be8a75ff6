package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// EnsureNamespace creates the namespace, labelled as managed by platzwart, when it does
// not exist, and reports whether it did. A namespace being deleted is an error. It
// reads once when the namespace exists and never changes an existing one.
func EnsureNamespace(ctx context.Context, cs kubernetes.Interface, name, fieldOwner string) (bool, error) {
	namespaces := cs.CoreV1().Namespaces()
	ns, err := namespaces.Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		if ns.DeletionTimestamp != nil {
			return false, fmt.Errorf("namespace %q is being deleted: wait until it is gone", name)
		}
		return false, nil
	case !apierrors.IsNotFound(err):
		return false, fmt.Errorf("namespace %q: %w", name, err)
	}
	_, err = namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   name,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "platzwart"},
	}}, metav1.CreateOptions{FieldManager: fieldOwner})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsAlreadyExists(err):
		return false, nil
	}
	return false, fmt.Errorf("creating namespace %q: %w", name, err)
}
