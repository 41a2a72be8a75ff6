package delivery

import (
	"slices"
	"time"
)

const day = 24 * time.Hour

// DeploymentFrequency returns successful deployments per day over the window before
// now: the records that succeeded and ended after now-window, divided by the window in
// days. Records that end after now (a clock ahead of ours) count. A window <= 0
// gives 0.
func DeploymentFrequency(history []Record, now time.Time, window time.Duration) float64 {
	if window <= 0 {
		return 0
	}
	cutoff := now.Add(-window)
	n := 0
	for _, r := range history {
		if r.Succeeded && r.end().After(cutoff) {
			n++
		}
	}
	return float64(n) / (float64(window) / float64(day))
}

// LeadTime is the lead time for changes of one successful deployment: from the
// commit to Ready. ok is false for a failed record or one without a commit time. A
// commit time after the end (clock skew) gives 0, never a negative duration.
func LeadTime(r Record) (d time.Duration, ok bool) {
	if !r.Succeeded || r.CommitTime.IsZero() {
		return 0, false
	}
	return max(r.end().Sub(r.CommitTime), 0), true
}

// LeadTimes returns the lead time of every successful deployment in history that has
// a commit time, oldest first (see [LeadTime]).
func LeadTimes(history []Record) []time.Duration {
	var out []time.Duration
	for _, r := range history {
		if d, ok := LeadTime(r); ok {
			out = append(out, d)
		}
	}
	return out
}

// ChangeFailureRate returns failed deployments / all deployments in history, between
// 0 and 1; 0 for an empty history. A failure merged from retries counts once.
func ChangeFailureRate(history []Record) float64 {
	if len(history) == 0 {
		return 0
	}
	failed := 0
	for _, r := range history {
		if !r.Succeeded {
			failed++
		}
	}
	return float64(failed) / float64(len(history))
}

// restore is one recovery: history[from] is the first failure after a success (or
// at the start), history[to] the success that ended the failures.
type restore struct{ from, to int }

func (s restore) duration(history []Record) time.Duration {
	return max(history[s.to].end().Sub(history[s.from].end()), 0)
}

func restores(history []Record) []restore {
	var out []restore
	first := -1 // index of the first failure of the current run of failures
	for i, r := range history {
		switch {
		case !r.Succeeded && first < 0:
			first = i
		case r.Succeeded && first >= 0:
			out = append(out, restore{from: first, to: i})
			first = -1
		}
	}
	return out
}

// TimesToRestore returns, oldest first, the time to restore of every recovery in
// history: from the end of the first failed deployment after a success (or at the
// start of the history) to the end of the next successful one. Failures that no
// success has ended yet are not included (see [FailingSince]). Negative durations
// (clock skew) are 0.
func TimesToRestore(history []Record) []time.Duration {
	rs := restores(history)
	if len(rs) == 0 {
		return nil
	}
	out := make([]time.Duration, len(rs))
	for i, s := range rs {
		out[i] = s.duration(history)
	}
	return out
}

// FailingSince returns the end of the first failed deployment of the failures at the
// end of history, and whether the newest deployment failed at all.
func FailingSince(history []Record) (time.Time, bool) {
	i := len(history)
	for i > 0 && !history[i-1].Succeeded {
		i--
	}
	if i == len(history) {
		return time.Time{}, false
	}
	return history[i].end(), true
}

// LastSuccess returns the newest successful deployment in history.
func LastSuccess(history []Record) (Record, bool) {
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].Succeeded {
			return history[i], true
		}
	}
	return Record{}, false
}

// Summary is the four delivery metrics of a history over a window.
type Summary struct {
	// Window is the window the summary covers; 0 means the whole history.
	Window time.Duration
	// Deployments and Failures count the records that ended in the window.
	Deployments, Failures int
	// DeploymentsPerDay is successful deployments per day (see [DeploymentFrequency]).
	// For the whole history it is divided by the days from the oldest record's start
	// to now, at least one.
	DeploymentsPerDay float64
	// LeadTimeMedian is the median lead time of the successful deployments in the
	// window that have a commit time; LeadTimes how many those are.
	LeadTimeMedian time.Duration
	LeadTimes      int
	// ChangeFailureRate is Failures / Deployments, 0 without deployments.
	ChangeFailureRate float64
	// Restores counts the recoveries whose successful deployment ended in the window;
	// MeanTimeToRestore is their mean time to restore. A recovery's failures may lie
	// before the window.
	Restores          int
	MeanTimeToRestore time.Duration
	// FailingSince is the end of the first of the failed deployments at the end of
	// the history (whatever the window); zero when the newest deployment succeeded.
	FailingSince time.Time
}

// Summarize computes the four metrics over the records that ended after now-window;
// a window <= 0 takes the whole history.
func Summarize(history []Record, now time.Time, window time.Duration) Summary {
	s := Summary{Window: max(window, 0)}
	inWindow := func(r Record) bool { return true }
	if window > 0 {
		cutoff := now.Add(-window)
		inWindow = func(r Record) bool { return r.end().After(cutoff) }
	}

	var windowed []Record
	for _, r := range history {
		if inWindow(r) {
			windowed = append(windowed, r)
		}
	}
	s.Deployments = len(windowed)
	s.ChangeFailureRate = ChangeFailureRate(windowed)
	for _, r := range windowed {
		if !r.Succeeded {
			s.Failures++
		}
	}

	if window > 0 {
		s.DeploymentsPerDay = DeploymentFrequency(history, now, window)
	} else if len(history) > 0 {
		oldest := history[0].Started
		if oldest.IsZero() {
			oldest = history[0].end()
		}
		span := max(now.Sub(oldest), day)
		successes := len(history) - s.Failures
		s.DeploymentsPerDay = float64(successes) / (float64(span) / float64(day))
	}

	lead := LeadTimes(windowed)
	s.LeadTimes = len(lead)
	s.LeadTimeMedian = median(lead)

	var total time.Duration
	for _, rs := range restores(history) {
		if inWindow(history[rs.to]) {
			s.Restores++
			total += rs.duration(history)
		}
	}
	if s.Restores > 0 {
		s.MeanTimeToRestore = total / time.Duration(s.Restores)
	}
	if t, ok := FailingSince(history); ok {
		s.FailingSince = t
	}
	return s
}

// median of ds (which it does not change); the mean of the two middle values for an
// even count, 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return s[m-1] + (s[m]-s[m-1])/2
}
