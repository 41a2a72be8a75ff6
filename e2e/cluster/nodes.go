package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// EnsureNodes makes sure at least n kwok nodes are registered, registering more like
// the ones Start registers (same annotation, labels and capacity: each holds 250
// pods), and waits until all of them are Ready. It is for benchmarks that need more
// room than the default nodes give. Only a local control plane runs kwok: an attached
// cluster is refused.
func (c *Cluster) EnsureNodes(ctx context.Context, n int) error {
	if c.runDir == "" {
		return errors.New("register kwok nodes: not a local control plane")
	}
	client, err := kubernetes.NewForConfig(c.config)
	if err != nil {
		return fmt.Errorf("register kwok nodes: create client: %w", err)
	}
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: kwokNodeLabel + "=" + kwokNodeLabelValue})
	if err != nil {
		return fmt.Errorf("register kwok nodes: %w", err)
	}
	have := make(map[string]bool, len(nodes.Items))
	for _, node := range nodes.Items {
		have[node.Name] = true
	}
	for i := 0; len(have) < n; i++ {
		name := kwokNodeName(i)
		if have[name] {
			continue
		}
		_, err := client.CoreV1().Nodes().Create(ctx, kwokNode(name), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("register node %s: %w", name, err)
		}
		have[name] = true
	}
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, nodesTimeout, true, func(ctx context.Context) (bool, error) {
		ok, err := nodesReady(ctx, client, n)
		lastErr = err
		return ok, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %d kwok nodes Ready: %w (last error: %v)", n, err, lastErr)
	}
	return nil
}
