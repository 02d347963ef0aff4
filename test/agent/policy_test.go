package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

// denyFinalizer creates a ValidatingAdmissionPolicy and its binding that deny any
// finalizer on the ReaperNode name, and waits until the API server enforces them.
func denyFinalizer(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-finalizer-" + name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
						Rule: admissionregistrationv1.Rule{
							APIGroups: []string{reaperv1alpha1.GroupVersion.Group}, APIVersions: []string{"*"}, Resources: []string{"reapernodes"},
						},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: fmt.Sprintf("object.metadata.name != '%s' || !has(object.metadata.finalizers) || size(object.metadata.finalizers) == 0", name),
				Message:    "the test denies finalizers on " + name,
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	for _, obj := range []client.Object{policy, binding} {
		if err := kube.Create(ctx, obj); err != nil {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
		t.Cleanup(func() { _ = kube.Delete(context.Background(), obj) })
	}

	// The API server loads policies asynchronously: probe with a dry-run create.
	probe := &reaperv1alpha1.ReaperNode{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: []string{reaperv1alpha1.AgentFinalizer}}}
	waitFor(t, 30*time.Second, "the API server enforces the policy "+policy.Name, func() (bool, string) {
		err := kube.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		return err != nil, fmt.Sprintf("a dry-run create with a finalizer returned %v", err)
	})
}
