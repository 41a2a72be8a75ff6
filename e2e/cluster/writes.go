package cluster

import (
	"net/http"
	"slices"
	"strings"
	"sync"

	"k8s.io/client-go/rest"
)

// Writes records the requests of a client that could change the cluster (every
// method but GET and HEAD; server-side dry runs excluded), for tests asserting that
// something wrote nothing. Use Wrap as kube.Options.WrapConfig.
type Writes struct {
	mu   sync.Mutex
	reqs []string
}

// Wrap returns a copy of cfg whose transport records into w.
func (w *Writes) Wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method != http.MethodGet && req.Method != http.MethodHead && !strings.Contains(req.URL.RawQuery, "dryRun=") {
				w.mu.Lock()
				w.reqs = append(w.reqs, req.Method+" "+req.URL.Path)
				w.mu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	})
	return cfg
}

// List returns the recorded requests ("METHOD path"), oldest first.
func (w *Writes) List() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.reqs)
}

// Reset forgets the recorded requests.
func (w *Writes) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reqs = nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Requests records every request of a client ("METHOD path?query"), for tests
// asserting that work was served without the API server. Use Wrap as
// kube.Options.WrapConfig.
type Requests struct {
	mu   sync.Mutex
	reqs []string
}

// Wrap returns a copy of cfg whose transport records into r.
func (r *Requests) Wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			r.mu.Lock()
			r.reqs = append(r.reqs, req.Method+" "+req.URL.RequestURI())
			r.mu.Unlock()
			return rt.RoundTrip(req)
		})
	})
	return cfg
}

// List returns the recorded requests, oldest first.
func (r *Requests) List() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// Reset forgets the recorded requests.
func (r *Requests) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = nil
}
