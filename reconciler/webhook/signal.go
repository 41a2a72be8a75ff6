package webhook

import "sync"

// Signal coalesces triggers into at most one pending "fetch now": [Signal.Fire] never
// blocks, and a burst of pushes while the consumer is busy (fetching, reconciling)
// leaves exactly one Event in [Signal.C], the newest. Use it as [Config.Trigger]:
//
//	sig := webhook.NewSignal()
//	recv, err := webhook.New(webhook.Config{Secret: secret, Trigger: sig.Fire, Logger: log})
//	...
//	for ev := range sig.C() { fetch(ctx) } // or a select with the poll ticker
//
// Coalescing keeps only the newest event, so filter refs before firing
// ([Config.Refs] does), not after receiving.
//
// A Signal is safe for concurrent use. The zero value is not usable; call [NewSignal].
type Signal struct {
	mu sync.Mutex
	ch chan Event
}

// NewSignal returns a Signal with nothing pending.
func NewSignal() *Signal {
	return &Signal{ch: make(chan Event, 1)}
}

// Fire makes e the pending event, replacing one not yet received. It never blocks.
func (s *Signal) Fire(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.ch: // drop the older pending event
	default:
	}
	// Only Fire sends, under the lock, and the buffer is now empty: this cannot block.
	s.ch <- e
}

// C returns the channel the pending event is delivered on. It is never closed.
func (s *Signal) C() <-chan Event {
	return s.ch
}
