package delivery_test

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/platzwart/platzwart/reconciler/delivery"
)

// The controller, after a reconcile that changed releases: observe, then append.
func Example() {
	reg := prometheus.NewRegistry() // the controller passes controller-runtime's metrics.Registry
	m, err := delivery.NewMetrics(reg)
	if err != nil {
		panic(err)
	}
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var history []delivery.Record // wp.Status.History
	for _, r := range []delivery.Record{
		{Revision: "a1", CommitTime: t0, Started: t0.Add(2 * time.Minute), Finished: t0.Add(6 * time.Minute), Succeeded: true},
		{Revision: "b2", CommitTime: t0.Add(time.Hour), Started: t0.Add(61 * time.Minute), Finished: t0.Add(70 * time.Minute), Message: "release keycloak: not ready, rolled back"},
		{Revision: "c3", CommitTime: t0.Add(80 * time.Minute), Started: t0.Add(81 * time.Minute), Finished: t0.Add(85 * time.Minute), Succeeded: true},
	} {
		m.ObserveDeployment("rathaus", "demo", history, r)
		history = delivery.Append(history, r, delivery.DefaultMaxHistory)
	}
	s := delivery.Summarize(history, t0.Add(24*time.Hour), 7*24*time.Hour)
	fmt.Printf("deployments %d, failed %d, per day %.2f\n", s.Deployments, s.Failures, s.DeploymentsPerDay)
	fmt.Printf("lead time p50 %v, change failure rate %.2f, mean time to restore %v\n",
		s.LeadTimeMedian, s.ChangeFailureRate, s.MeanTimeToRestore)
	// Output:
	// deployments 3, failed 1, per day 0.29
	// lead time p50 5m30s, change failure rate 0.33, mean time to restore 15m0s
}
