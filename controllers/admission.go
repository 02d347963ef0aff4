package controllers

import (
	"fmt"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	admissionv1ac "k8s.io/client-go/applyconfigurations/admissionregistration/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	reaperv1alpha1 "reaper.dev/reaper/api/v1alpha1"
)

// NodeNameExtra is the user-info extra key in which the API server puts the node of a
// service account token that is bound to a pod.
const NodeNameExtra = "authentication.kubernetes.io/node-name"

// runtimeClassPolicy returns the ValidatingAdmissionPolicy that lets only the pods of
// opted-in namespaces use a Reaper RuntimeClass. It checks Pods when they are created,
// because a pod's runtimeClassName cannot change, and the pod templates of the workload
// kinds when they are created or updated, so a workload fails at once rather than when
// its controller creates pods.
func runtimeClassPolicy(cfg Config) *admissionv1ac.ValidatingAdmissionPolicyApplyConfiguration {
	create := admissionregistrationv1.Create
	update := admissionregistrationv1.Update
	rule := func(group string, ops []admissionregistrationv1.OperationType, resources ...string) *admissionv1ac.NamedRuleWithOperationsApplyConfiguration {
		return admissionv1ac.NamedRuleWithOperations().
			WithAPIGroups(group).WithAPIVersions("*").WithResources(resources...).WithOperations(ops...).
			WithScope(admissionregistrationv1.AllScopes)
	}

	label := cfg.Admission.NamespaceLabel
	allowed := fmt.Sprintf("has(namespaceObject.metadata.labels) && %s in namespaceObject.metadata.labels && namespaceObject.metadata.labels[%s] == 'true'",
		celString(label), celString(label))
	message := fmt.Sprintf("'namespace ' + request.namespace + ' may not run pods of RuntimeClass ' + variables.runtimeClass + "+
		"', which run processes on the host: to allow it, run kubectl label namespace ' + request.namespace + %s",
		celString(" "+label+"=true"))

	return admissionv1ac.ValidatingAdmissionPolicy(cfg.Admission.PolicyName).
		WithLabels(managedLabels()).
		WithSpec(admissionv1ac.ValidatingAdmissionPolicySpec().
			WithFailurePolicy(admissionregistrationv1.Fail).
			WithMatchConstraints(matchResources().WithResourceRules(
				rule("", ops(create), "pods"),
				rule("apps", ops(create, update), "deployments", "statefulsets", "daemonsets", "replicasets"),
				rule("batch", ops(create, update), "jobs", "cronjobs"),
			)).
			WithVariables(
				admissionv1ac.Variable().WithName("podSpec").WithExpression(
					"request.kind.kind == 'Pod' ? object.spec : "+
						"(request.kind.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.spec : object.spec.template.spec)"),
				admissionv1ac.Variable().WithName("runtimeClass").WithExpression(
					"has(variables.podSpec.runtimeClassName) ? variables.podSpec.runtimeClassName : ''"),
			).
			WithValidations(admissionv1ac.Validation().
				WithExpression(fmt.Sprintf("!(variables.runtimeClass in %s) || (%s)", celList(reaperRuntimeClasses(cfg)), allowed)).
				WithMessageExpression(message).
				WithReason(metav1.StatusReasonForbidden)))
}

// agentPolicy returns the ValidatingAdmissionPolicy that lets the agent's service
// account write only the ReaperNode of the node its token is bound to. The agent's
// ClusterRole allows it to patch every ReaperNode, because RBAC cannot name an object
// by the caller's node.
func agentPolicy(cfg Config) *admissionv1ac.ValidatingAdmissionPolicyApplyConfiguration {
	user := fmt.Sprintf("system:serviceaccount:%s:%s", cfg.Namespace, cfg.Agent.ServiceAccountName)
	extra := "request.userInfo.extra[" + celString(NodeNameExtra) + "]"
	return admissionv1ac.ValidatingAdmissionPolicy(cfg.Admission.AgentPolicyName).
		WithLabels(managedLabels()).
		WithSpec(admissionv1ac.ValidatingAdmissionPolicySpec().
			WithFailurePolicy(admissionregistrationv1.Fail).
			WithMatchConstraints(matchResources().WithResourceRules(
				admissionv1ac.NamedRuleWithOperations().
					WithAPIGroups(reaperv1alpha1.GroupVersion.Group).WithAPIVersions("*").
					WithResources("reapernodes", "reapernodes/status").
					WithOperations(admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete).
					WithScope(admissionregistrationv1.AllScopes),
			)).
			WithMatchConditions(admissionv1ac.MatchCondition().
				WithName("agent-service-account").
				WithExpression("request.userInfo.username == " + celString(user))).
			WithValidations(admissionv1ac.Validation().
				WithExpression(fmt.Sprintf("has(request.userInfo.extra) && %s in request.userInfo.extra && request.name in %s", celString(NodeNameExtra), extra)).
				WithMessageExpression(fmt.Sprintf("'service account %s may write only the ReaperNode of the node that its token is bound to (user extra %s), not ReaperNode ' + request.name",
					user, NodeNameExtra)).
				WithReason(metav1.StatusReasonForbidden)))
}

// matchResources returns match constraints with the values that the API server would
// default, so that the fields the controller owns equal its config and an unchanged
// policy is not applied again.
func matchResources() *admissionv1ac.MatchResourcesApplyConfiguration {
	return admissionv1ac.MatchResources().
		WithMatchPolicy(admissionregistrationv1.Equivalent).
		WithNamespaceSelector(metav1ac.LabelSelector()).
		WithObjectSelector(metav1ac.LabelSelector())
}

// policyBinding returns the binding that makes the policy of that name deny requests.
func policyBinding(policy string) *admissionv1ac.ValidatingAdmissionPolicyBindingApplyConfiguration {
	return admissionv1ac.ValidatingAdmissionPolicyBinding(policy).
		WithLabels(managedLabels()).
		WithSpec(admissionv1ac.ValidatingAdmissionPolicyBindingSpec().
			WithPolicyName(policy).
			WithValidationActions(admissionregistrationv1.Deny))
}

// reaperRuntimeClasses returns the names of the RuntimeClasses that the config keeps.
func reaperRuntimeClasses(cfg Config) []string {
	names := []string{cfg.RuntimeClasses.Name}
	if p := *cfg.RuntimeClasses.ProtectedName; p != "" {
		names = append(names, p)
	}
	return names
}

func ops(o ...admissionregistrationv1.OperationType) []admissionregistrationv1.OperationType {
	return o
}

// celString returns s as a CEL string literal. The names that go into the policies are
// DNS subdomains, label keys and user names, whose characters CEL and Go quote alike.
func celString(s string) string {
	return strconv.Quote(s)
}

func celList(items []string) string {
	quoted := make([]string, len(items))
	for i, item := range items {
		quoted[i] = celString(item)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
