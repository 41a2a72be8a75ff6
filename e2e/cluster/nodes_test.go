package cluster_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/platzwart/platzwart/e2e/cluster"
)

// TestEnsureNodes: more kwok nodes can be registered, like the first ones, and become
// Ready; asking again for as many registers none. Not parallel: the stability test
// watches every node, and a node it saw before kwok's first heartbeat would count as
// not Ready; sequential tests finish before the parallel ones go on.
func TestEnsureNodes(t *testing.T) {
	c := cluster.FromTest(t)
	client, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	kwok := metav1.ListOptions{LabelSelector: "type=kwok"}
	before, err := client.CoreV1().Nodes().List(t.Context(), kwok)
	if err != nil {
		t.Fatal(err)
	}
	want := len(before.Items) + 1
	for range 2 {
		if err := c.EnsureNodes(t.Context(), want); err != nil {
			t.Fatal(err)
		}
	}
	after, err := client.CoreV1().Nodes().List(t.Context(), kwok)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Items) != want {
		t.Fatalf("%d kwok nodes after EnsureNodes(%d) twice", len(after.Items), want)
	}
	for _, node := range after.Items {
		if !cluster.NodeReady(&node) {
			t.Errorf("node %s is not Ready", node.Name)
		}
		if node.Annotations["kwok.x-k8s.io/node"] != "fake" || node.Status.Allocatable.Pods().Value() != 250 {
			t.Errorf("node %s: annotations %v, allocatable pods %v; want kwok's annotation and 250 pods", node.Name, node.Annotations, node.Status.Allocatable.Pods())
		}
		if _, ok := node.Labels[corev1.LabelHostname]; !ok {
			t.Errorf("node %s has no hostname label", node.Name)
		}
	}
}
