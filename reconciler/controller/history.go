package controller

import (
	"encoding/json"
	"reflect"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/delivery"
)

// fromAPIHistory converts the status history for the delivery package.
func fromAPIHistory(h []v1alpha1.Deployment) []delivery.Record {
	out := make([]delivery.Record, 0, len(h))
	for _, d := range h {
		r := delivery.Record{Revision: d.Revision, Started: d.Started.Time, Finished: d.Finished.Time, Succeeded: d.Succeeded, Attempts: d.Attempts, Message: d.Message}
		if d.CommitTime != nil {
			r.CommitTime = d.CommitTime.Time
		}
		out = append(out, r)
	}
	return out
}

// toAPIHistory converts a delivery history for the status.
func toAPIHistory(h []delivery.Record) []v1alpha1.Deployment {
	out := make([]v1alpha1.Deployment, 0, len(h))
	for _, r := range h {
		d := v1alpha1.Deployment{Revision: r.Revision, Started: metav1.NewTime(r.Started), Finished: metav1.NewTime(r.Finished), Succeeded: r.Succeeded, Attempts: r.Attempts, Message: r.Message}
		if !r.CommitTime.IsZero() {
			t := metav1.NewTime(r.CommitTime)
			d.CommitTime = &t
		}
		out = append(out, d)
	}
	return out
}

// toAPIMetrics summarises a history for the status.
func toAPIMetrics(h []delivery.Record, now time.Time) *v1alpha1.DeliveryMetrics {
	s := delivery.Summarize(h, now, 0)
	m := &v1alpha1.DeliveryMetrics{
		DeploymentsPerDay: strconv.FormatFloat(s.DeploymentsPerDay, 'f', 2, 64),
		ChangeFailureRate: strconv.FormatFloat(s.ChangeFailureRate, 'f', 2, 64),
	}
	if s.LeadTimes > 0 {
		m.LeadTime = &metav1.Duration{Duration: s.LeadTimeMedian.Round(time.Second)}
	}
	if s.Restores > 0 {
		m.TimeToRestore = &metav1.Duration{Duration: s.MeanTimeToRestore.Round(time.Second)}
	}
	return m
}

// equalStatus compares two statuses as they would be written.
func equalStatus(a, b v1alpha1.WorkplaceStatus) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return reflect.DeepEqual(a, b)
	}
	return string(ja) == string(jb)
}
