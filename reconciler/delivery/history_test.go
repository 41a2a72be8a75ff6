package delivery

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// at is t0 plus m minutes.
func at(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }

// ok and fail build records: commit at c, started at s, finished at f (minutes after
// t0); c < 0 means no commit time.
func ok(rev string, c, s, f float64) Record   { return rec(rev, c, s, f, true) }
func fail(rev string, c, s, f float64) Record { return rec(rev, c, s, f, false) }

func rec(rev string, c, s, f float64, succeeded bool) Record {
	r := Record{Revision: rev, Started: at(s), Finished: at(f), Succeeded: succeeded}
	if c >= 0 {
		r.CommitTime = at(c)
	}
	if !succeeded {
		r.Message = "release " + rev + " not ready"
	}
	return r
}

func revisions(h []Record) string {
	s := ""
	for i, r := range h {
		if i > 0 {
			s += ","
		}
		s += r.Revision
		if !r.Succeeded {
			s += "!"
		}
		if r.Attempts > 1 {
			s += fmt.Sprintf("x%d", r.Attempts)
		}
	}
	return s
}

func TestAppend(t *testing.T) {
	cases := []struct {
		name    string
		history []Record
		add     Record
		limit   int
		want    string
	}{
		{"empty", nil, ok("a", 0, 1, 2), 20, "a"},
		{"newest last", []Record{ok("a", 0, 1, 2)}, fail("b", 3, 4, 5), 20, "a,b!"},
		{"bounded: oldest dropped", []Record{ok("a", 0, 1, 2), ok("b", 0, 3, 4), ok("c", 0, 5, 6)}, ok("d", 0, 7, 8), 3, "b,c,d"},
		{"limit below 1 keeps one", []Record{ok("a", 0, 1, 2)}, ok("b", 0, 3, 4), 0, "b"},
		{"shrinking limit", []Record{ok("a", 0, 1, 2), ok("b", 0, 3, 4), ok("c", 0, 5, 6)}, ok("d", 0, 7, 8), 2, "c,d"},
		{"retry failing again merges", []Record{ok("a", 0, 1, 2), fail("b", 3, 4, 5)}, fail("b", 3, 6, 7), 20, "a,b!x2"},
		{"success again is no new deployment", []Record{ok("a", 0, 1, 2)}, ok("a", 0, 3, 4), 20, "a"},
		{"failure after success of the same revision", []Record{ok("a", 0, 1, 2)}, fail("a", 0, 3, 4), 20, "a,a!"},
		{"success after failure of the same revision", []Record{fail("a", 0, 1, 2)}, ok("a", 0, 3, 4), 20, "a!,a"},
		{"same outcome, another revision", []Record{fail("a", 0, 1, 2)}, fail("b", 0, 3, 4), 20, "a!,b!"},
		{"merge at the bound", []Record{ok("a", 0, 1, 2), fail("b", 0, 3, 4)}, fail("b", 0, 5, 6), 2, "a,b!x2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := revisions(Append(c.history, c.add, c.limit)); got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestAppendMergeKeepsFirstFailure(t *testing.T) {
	h := []Record{fail("b", 1, 2, 3)}
	r := fail("b", 1, 10, 11)
	r.Message = "still not ready"
	r.Attempts = 2 // the caller may count retries itself
	got := Append(h, r, 20)
	if len(got) != 1 {
		t.Fatalf("%d records", len(got))
	}
	g := got[0]
	if !g.Started.Equal(at(2)) || !g.Finished.Equal(at(3)) {
		t.Errorf("merged record moved: started %v finished %v", g.Started, g.Finished)
	}
	if g.Attempts != 3 || g.Message != "still not ready" {
		t.Errorf("attempts %d message %q", g.Attempts, g.Message)
	}
	if h[0].Attempts != 0 || h[0].Message != "release b not ready" {
		t.Errorf("input changed: %+v", h[0])
	}
}

// TestAppendDoesNotAlias: the result never shares memory with the input, even when the
// input has spare capacity (a status slice read from the cache must not change).
func TestAppendDoesNotAlias(t *testing.T) {
	backing := make([]Record, 2, 10)
	backing[0], backing[1] = ok("a", 0, 1, 2), ok("sentinel", 0, 1, 2)
	h := backing[:1]
	out := Append(h, ok("b", 0, 3, 4), 20)
	out[0].Message = "changed"
	if backing[0].Message != "" || backing[1].Revision != "sentinel" {
		t.Errorf("input backing array written: %+v", backing[:2])
	}
	out = Append(h, ok("a", 0, 3, 4), 20) // repeat
	out[0].Message = "changed"
	if backing[0].Message != "" {
		t.Error("repeat shares the input")
	}
}

func TestIsRepeat(t *testing.T) {
	if IsRepeat(nil, ok("a", 0, 1, 2)) {
		t.Error("repeat of nothing")
	}
	h := []Record{fail("a", 0, 1, 2), ok("b", 0, 3, 4)}
	if !IsRepeat(h, ok("b", 0, 5, 6)) || IsRepeat(h, fail("b", 0, 5, 6)) || IsRepeat(h, ok("a", 0, 5, 6)) {
		t.Error("IsRepeat compares only with the newest record's revision and outcome")
	}
}
