package cluster

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// FailLabel is the pod label that makes kwok fail a pod (exit code 1, phase
// Failed) instead of running or completing it: the selector of kwok's chaos Stage
// pod-container-running-failed, which this control plane loads.
const FailLabel = "pod-container-running-failed.stage.kwok.x-k8s.io"

// FailJobPods makes the pods of Jobs in namespace whose name starts with prefix
// fail, for tests of what happens when a Job's container exits non-zero: a
// MutatingAdmissionPolicy (admissionregistration.k8s.io/v1) adds FailLabel to
// those pods as they are created. Nothing in the code under test changes. The
// policy and its binding are removed when the test ends. FailJobPods returns once
// the API server applies the policy (checked with a server-side dry run), with a
// function that removes it earlier (pods created after it returns run as usual).
func (c *Cluster) FailJobPods(t testing.TB, namespace, prefix string) (stop func()) {
	t.Helper()
	ctx := t.Context()
	client, err := kubernetes.NewForConfig(c.config)
	if err != nil {
		t.Fatalf("FailJobPods: %v", err)
	}
	name := "fail-jobs-" + namespace
	if len(name) > 253 {
		name = name[:253]
	}
	const jobLabel = "batch.kubernetes.io/job-name"
	policy := &admissionv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.MutatingAdmissionPolicySpec{
			MatchConstraints: &admissionv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: namespace}},
				ResourceRules: []admissionv1.NamedRuleWithOperations{{RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				}}},
			},
			MatchConditions: []admissionv1.MatchCondition{{
				Name: "job-name-prefix",
				Expression: fmt.Sprintf("has(object.metadata.labels) && %s in object.metadata.labels && object.metadata.labels[%s].startsWith(%s)",
					strconv.Quote(jobLabel), strconv.Quote(jobLabel), strconv.Quote(prefix)),
			}},
			FailurePolicy: ptr.To(admissionv1.Fail),
			Mutations: []admissionv1.Mutation{{
				PatchType: admissionv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionv1.ApplyConfiguration{Expression: fmt.Sprintf(
					`Object{metadata: Object.metadata{labels: {%s: "true"}}}`, strconv.Quote(FailLabel))},
			}},
			ReinvocationPolicy: admissionv1.NeverReinvocationPolicy,
		},
	}
	binding := &admissionv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       admissionv1.MutatingAdmissionPolicyBindingSpec{PolicyName: name},
	}
	api := client.AdmissionregistrationV1()
	if _, err := api.MutatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("FailJobPods: create MutatingAdmissionPolicy %s: %v", name, err)
	}
	remove := func(ctx context.Context) {
		_ = api.MutatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = api.MutatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		remove(ctx)
	})
	if _, err := api.MutatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("FailJobPods: create MutatingAdmissionPolicyBinding %s: %v", name, err)
	}
	// The API server picks policies up from an informer: probe with a dry-run pod
	// until the label is added.
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "fail-probe-", Namespace: namespace, Labels: map[string]string{jobLabel: prefix + "probe"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "registry.k8s.io/pause:3.10"}}},
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		out, err := client.CoreV1().Pods(namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, nil
		}
		return out.Labels[FailLabel] == "true", nil
	})
	if err != nil {
		t.Fatalf("FailJobPods: the policy %s was not applied to pods within a minute: %v", name, err)
	}
	return func() {
		t.Helper()
		remove(ctx)
		// Wait until the API server no longer applies it.
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			out, err := client.CoreV1().Pods(namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err == nil && out.Labels[FailLabel] == "", nil
		})
		if err != nil {
			t.Fatalf("FailJobPods: the policy %s was still applied a minute after its removal: %v", name, err)
		}
	}
}
