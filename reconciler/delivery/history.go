package delivery

import (
	"slices"
	"time"
)

// DefaultMaxHistory is a bound for the history in the Workplace status: enough for the
// change failure ratio over recent deployments, small enough for an object in etcd
// (a record is about 200 bytes).
const DefaultMaxHistory = 20

// Record is one deployment of one revision of a workplace. Times are wall-clock times
// of the controller (the commit time is the committer's). The JSON names are those a
// status field would use; converting to metav1.Time is the API package's business.
type Record struct {
	// Revision is the Git commit applied.
	Revision string `json:"revision"`
	// CommitTime is the commit's committer time; zero when unknown (then the record
	// has no lead time).
	CommitTime time.Time `json:"commitTime,omitzero"`
	// Started is when the reconcile began applying the revision.
	Started time.Time `json:"started"`
	// Finished is when the outcome was known: Ready=True (succeeded) or Ready=False
	// after the failure was handled (rolled back). A failed record that merged retries
	// keeps the end of the first attempt. When zero, Started stands in for it.
	Finished time.Time `json:"finished"`
	// Succeeded reports Ready=True with this revision.
	Succeeded bool `json:"succeeded"`
	// Attempts is how many consecutive reconciles of this revision ended this way;
	// 0 means 1.
	Attempts int32 `json:"attempts,omitempty"`
	// Message is the outcome in words (the Ready condition's message); for merged
	// failures, the latest.
	Message string `json:"message,omitempty"`
}

// end is when the record's outcome was known.
func (r Record) end() time.Time {
	if r.Finished.IsZero() {
		return r.Started
	}
	return r.Finished
}

func (r Record) attempts() int32 {
	return max(r.Attempts, 1)
}

// IsRepeat reports whether r repeats the newest record of history: the same revision
// with the same outcome. [Append] merges such a record instead of adding it, and
// [Metrics.ObserveDeployment] does not count it.
func IsRepeat(history []Record, r Record) bool {
	if len(history) == 0 {
		return false
	}
	last := history[len(history)-1]
	return last.Revision == r.Revision && last.Succeeded == r.Succeeded
}

// Append returns history with r added as the newest record, keeping at most limit
// records (the oldest are dropped; limit < 1 counts as 1). A record that repeats the
// newest one ([IsRepeat]) is merged: a failure adds its attempts to the newest record
// and replaces its message; a success leaves the history unchanged. The result never
// shares its backing array with history, so it can go straight into a status that
// history was read from.
func Append(history []Record, r Record, limit int) []Record {
	limit = max(limit, 1)
	var out []Record
	if IsRepeat(history, r) {
		out = slices.Clone(history)
		if !r.Succeeded {
			last := &out[len(out)-1]
			last.Attempts = last.attempts() + r.attempts()
			last.Message = r.Message
		}
	} else {
		out = make([]Record, 0, len(history)+1)
		out = append(out, history...)
		out = append(out, r)
	}
	if len(out) > limit {
		out = slices.Clone(out[len(out)-limit:])
	}
	return out
}
