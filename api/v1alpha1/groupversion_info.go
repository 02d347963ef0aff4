package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the types in this package.
	GroupVersion = schema.GroupVersion{Group: "reaper.dev", Version: "v1alpha1"}

	// SchemeBuilder collects the functions that register the types of this package.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme registers the types of this package with a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers ReaperNode and ReaperNodeList, and the meta/v1 types that every
// API group version needs, such as ListOptions and WatchEvent.
func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &ReaperNode{}, &ReaperNodeList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
