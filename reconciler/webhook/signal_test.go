package webhook

import (
	"sync"
	"testing"
	"time"
)

func TestSignalCoalesces(t *testing.T) {
	s := NewSignal()
	select {
	case ev := <-s.C():
		t.Fatalf("pending before any fire: %+v", ev)
	default:
	}
	for _, c := range []string{"a", "b", "c"} {
		s.Fire(Event{Commit: c}) // never blocks, nobody is receiving
	}
	select {
	case ev := <-s.C():
		if ev.Commit != "c" {
			t.Errorf("pending %q, want the newest, c", ev.Commit)
		}
	default:
		t.Fatal("nothing pending after three fires")
	}
	select {
	case ev := <-s.C():
		t.Fatalf("second pending event %+v: a burst must coalesce into one", ev)
	default:
	}
}

// TestSignalConcurrent fires from many goroutines while a consumer receives: no Fire
// blocks, and after the last Fire something is pending or was received.
func TestSignalConcurrent(t *testing.T) {
	s := NewSignal()
	done := make(chan struct{})
	received := make(chan int, 1)
	go func() {
		n := 0
		for {
			select {
			case <-s.C():
				n++
			case <-done:
				received <- n
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				s.Fire(Event{})
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("Fire blocked")
	}
	close(done)
	n := <-received
	pending := len(s.C())
	if n+pending == 0 {
		t.Error("8000 fires, nothing received or pending")
	}
	if n+pending > 8000 {
		t.Errorf("%d received + %d pending > 8000 fires", n, pending)
	}
}
