package release

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/workload"
)

// consumer is a release depending on a step's release, with the manifest of its
// newest revision: whose workloads a step that stops consumers scales down.
type consumer struct {
	release  string
	manifest string
}

// declaresStop reports whether any step to rel's version may stop its consumers:
// only such releases look for stopped consumers to start again.
func declaresStop(rel *plan.Release) bool {
	if rel == nil {
		return false
	}
	for _, m := range rel.Migrations {
		if m.StopConsumers {
			return true
		}
	}
	return false
}

// stopsConsumers reports whether the step to rel from version from stops the
// consumers: one of its migrations that applies to the step says so.
func stopsConsumers(rel *plan.Release, from string) bool {
	for _, m := range rel.Migrations {
		if m.StopConsumers && m.Applies(from) {
			return true
		}
	}
	return false
}

// consumerWorkloads reads the Deployments and StatefulSets of a step's consumers
// (those gone from the cluster are skipped).
func (e *Engine) consumerWorkloads(ctx context.Context, s Step) ([]workload.Workload, error) {
	var out []workload.Workload
	for _, c := range s.consumers {
		_, objs, err := objects(c.manifest, s.planned.Namespace, e.cluster.Mapper)
		if err != nil {
			return nil, fmt.Errorf("reading the manifest of consumer %s: %w", c.release, err)
		}
		for _, o := range objs {
			if o.GetAPIVersion() != "apps/v1" || (o.GetKind() != workload.Deployment && o.GetKind() != workload.StatefulSet) {
				continue
			}
			w, err := workload.Get(ctx, e.cluster.Clientset, s.planned.Namespace, o.GetKind(), o.GetName())
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("consumer %s: %w", c.release, err)
			}
			out = append(out, w)
		}
	}
	return out, nil
}

// stopConsumers scales every workload of the step's consumers to zero (recording
// its replicas on it) and waits until their pods are gone.
func (e *Engine) stopConsumers(ctx context.Context, s Step, start time.Time) error {
	ws, err := e.consumerWorkloads(ctx, s)
	if err != nil {
		return err
	}
	for _, w := range ws {
		e.progress(s.Release, "stop", time.Since(start), fmt.Sprintf("consumer %s %s: %d → 0 replicas", w.Kind, w.Name, w.Want()))
		if err := workload.Stop(ctx, e.cluster.Clientset, w); err != nil {
			return err
		}
	}
	var left []string
	err = wait.PollUntilContextTimeout(ctx, e.opts.PollInterval, s.planned.Timeout, true, func(ctx context.Context) (bool, error) {
		var err error
		left, err = workload.PodsLeft(ctx, e.cluster.Clientset, ws)
		return err == nil && len(left) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("stopping the consumers of %s: pods left after %s: %s: %w", s.Release, s.planned.Timeout, strings.Join(left, ", "), err)
	}
	return nil
}

// startConsumers gives every stopped consumer workload its replicas back. It does
// not wait: the consumers' releases depend on this one and wait until they are
// ready.
func (e *Engine) startConsumers(ctx context.Context, s Step, start time.Time) error {
	ws, err := e.consumerWorkloads(ctx, s)
	if err != nil {
		return err
	}
	for _, w := range ws {
		if !w.Stopped {
			continue
		}
		e.progress(s.Release, "start", time.Since(start), fmt.Sprintf("consumer %s %s: 0 → %d replicas", w.Kind, w.Name, w.Recorded))
		if err := workload.Start(ctx, e.cluster.Clientset, w); err != nil {
			return err
		}
	}
	return nil
}
