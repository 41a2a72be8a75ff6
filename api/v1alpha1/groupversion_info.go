// Package v1alpha1 holds the Workplace API of platzwart (group platzwart.io, version
// v1alpha1). The same type is read as a YAML document from Git and served as a CRD.
//
// +kubebuilder:object:generate=true
// +groupName=platzwart.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the platzwart API.
	GroupVersion = schema.GroupVersion{Group: "platzwart.io", Version: "v1alpha1"}

	// SchemeBuilder registers the API types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the API types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers Workplace and WorkplaceList.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Workplace{}, &WorkplaceList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
