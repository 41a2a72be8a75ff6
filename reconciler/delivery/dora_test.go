package delivery

import (
	"slices"
	"testing"
	"time"
)

const week = 7 * day

func TestDoraMetrics(t *testing.T) {
	now := at(600)
	cases := []struct {
		name         string
		history      []Record
		freq         float64 // per day over a week
		lead         []time.Duration
		cfr          float64
		ttr          []time.Duration
		failingSince time.Time // zero: not failing
	}{
		{name: "empty"},
		{
			name:    "only failures",
			history: []Record{fail("a", 0, 1, 3), fail("b", 0, 10, 12)},
			cfr:     1, failingSince: at(3),
		},
		{
			name:    "one success",
			history: []Record{ok("a", 0, 5, 10)},
			freq:    1.0 / 7, lead: []time.Duration{10 * time.Minute},
		},
		{
			name: "restore after several failures",
			history: []Record{
				ok("a", 0, 1, 2),
				fail("b", 3, 4, 5),
				fail("c", 6, 7, 9),
				fail("d", 10, 11, 12),
				ok("e", 13, 14, 20),
			},
			freq: 2.0 / 7, lead: []time.Duration{2 * time.Minute, 7 * time.Minute},
			cfr: 3.0 / 5, ttr: []time.Duration{15 * time.Minute}, // from b's end (5) to e's end (20)
		},
		{
			name: "two recoveries and a failure at the start",
			history: []Record{
				fail("a", 0, 1, 2),
				ok("b", 0, 3, 4),
				fail("c", 0, 5, 6),
				ok("d", 0, 7, 10),
				ok("e", 0, 11, 12),
			},
			freq: 3.0 / 7, lead: []time.Duration{4 * time.Minute, 10 * time.Minute, 12 * time.Minute},
			cfr: 2.0 / 5, ttr: []time.Duration{2 * time.Minute, 4 * time.Minute},
		},
		{
			name:    "currently failing after a success",
			history: []Record{ok("a", -1, 1, 2), fail("b", -1, 3, 4), fail("c", -1, 5, 8)},
			freq:    1.0 / 7, cfr: 2.0 / 3, failingSince: at(4),
		},
		{
			name: "clock skew: commit after ready is lead time 0, success before failure is restore 0",
			history: []Record{
				ok("a", 30, 1, 2), // committed "after" it was ready
				fail("b", 0, 10, 20),
				ok("c", 0, 12, 15), // a replay with a slower clock
			},
			freq: 2.0 / 7, lead: []time.Duration{0, 15 * time.Minute},
			cfr: 1.0 / 3, ttr: []time.Duration{0},
		},
		{
			name:    "no commit time, no lead time",
			history: []Record{ok("a", -1, 1, 2)},
			freq:    1.0 / 7,
		},
		{
			name:    "finished unknown: started stands in",
			history: []Record{{Revision: "a", CommitTime: at(0), Started: at(3), Succeeded: true}},
			freq:    1.0 / 7, lead: []time.Duration{3 * time.Minute},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := DeploymentFrequency(c.history, now, week); !near(got, c.freq) {
				t.Errorf("frequency %v, want %v", got, c.freq)
			}
			if got := LeadTimes(c.history); !slices.Equal(got, c.lead) {
				t.Errorf("lead times %v, want %v", got, c.lead)
			}
			if got := ChangeFailureRate(c.history); !near(got, c.cfr) {
				t.Errorf("change failure rate %v, want %v", got, c.cfr)
			}
			if got := TimesToRestore(c.history); !slices.Equal(got, c.ttr) {
				t.Errorf("times to restore %v, want %v", got, c.ttr)
			}
			since, failing := FailingSince(c.history)
			if failing != !c.failingSince.IsZero() || !since.Equal(c.failingSince) {
				t.Errorf("failing since %v (%v), want %v", since, failing, c.failingSince)
			}
		})
	}
}

func near(a, b float64) bool {
	d := a - b
	return d < 1e-9 && d > -1e-9
}

func TestDeploymentFrequencyWindow(t *testing.T) {
	now := t0.Add(30 * day)
	h := []Record{
		ok("old", -1, 0, 0), // 30 days ago
		{Revision: "edge", Succeeded: true, Started: now.Add(-week - time.Minute), Finished: now.Add(-week)}, // exactly at the cutoff: out
		ok("in1", -1, 0, 0),
		fail("f", -1, 0, 0),
		ok("future", -1, 0, 0),
	}
	h[2].Finished = now.Add(-6 * day)
	h[3].Finished = now.Add(-day)
	h[4].Finished = now.Add(time.Minute) // a clock ahead of ours
	if got := DeploymentFrequency(h, now, week); !near(got, 2.0/7) {
		t.Errorf("frequency %v, want 2/7", got)
	}
	if got := DeploymentFrequency(h, now, day); !near(got, 1) {
		t.Errorf("frequency over a day %v, want 1", got)
	}
	for _, w := range []time.Duration{0, -time.Hour} {
		if got := DeploymentFrequency(h, now, w); got != 0 {
			t.Errorf("window %v: %v, want 0", w, got)
		}
	}
}

func TestSummarize(t *testing.T) {
	now := t0.Add(10 * day)
	h := []Record{
		ok("a", 0, 1, 2),
		fail("b", 0, 3, 4), // 10 days ago: before a 7-day window
	}
	c := ok("c", -1, 0, 0)
	c.Started, c.Finished = now.Add(-2*day-time.Hour), now.Add(-2*day) // restores b, inside the window
	d := ok("d", -1, 0, 0)
	d.CommitTime, d.Started, d.Finished = now.Add(-day-time.Hour), now.Add(-day-30*time.Minute), now.Add(-day)
	e := fail("e", -1, 0, 0)
	e.Started, e.Finished = now.Add(-time.Hour), now.Add(-50*time.Minute)
	h = append(h, c, d, e)

	s := Summarize(h, now, week)
	want := Summary{
		Window:            week,
		Deployments:       3,
		Failures:          1,
		DeploymentsPerDay: 2.0 / 7,
		LeadTimeMedian:    time.Hour,
		LeadTimes:         1,
		ChangeFailureRate: 1.0 / 3,
		Restores:          1,
		MeanTimeToRestore: c.Finished.Sub(at(4)), // from b, outside the window, to c
		FailingSince:      e.Finished,
	}
	if !near(s.DeploymentsPerDay, want.DeploymentsPerDay) || !near(s.ChangeFailureRate, want.ChangeFailureRate) {
		t.Errorf("ratios: got %+v\nwant %+v", s, want)
	}
	s.DeploymentsPerDay, s.ChangeFailureRate = want.DeploymentsPerDay, want.ChangeFailureRate
	if s != want {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}

	all := Summarize(h, now, 0)
	if all.Window != 0 || all.Deployments != 5 || all.Failures != 2 || all.Restores != 1 {
		t.Errorf("whole history: %+v", all)
	}
	// 3 successes over the 10 days since the oldest record started.
	if !near(all.DeploymentsPerDay, 3.0/(10-1.0/(24*60))) {
		t.Errorf("whole history per day %v", all.DeploymentsPerDay)
	}
	// A history younger than a day is divided by one day, not by minutes.
	young := []Record{ok("a", 0, 1, 2), ok("b", 0, 3, 4)}
	if got := Summarize(young, at(10), 0).DeploymentsPerDay; !near(got, 2) {
		t.Errorf("young history per day %v, want 2", got)
	}
	if got := Summarize(nil, now, week); got != (Summary{Window: week}) {
		t.Errorf("empty: %+v", got)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{5}, 5},
		{[]time.Duration{9, 1, 5}, 5},
		{[]time.Duration{4, 1, 3, 2}, 2}, // (2+3)/2, integer nanoseconds
		{[]time.Duration{10, 20}, 15},
	} {
		in := slices.Clone(c.in)
		if got := median(in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("median sorted its input %v", in)
		}
	}
}
