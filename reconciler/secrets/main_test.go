package secrets

import (
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/platzwart/platzwart/e2e/cluster"
)

// The tests that need a cluster run against a real local control plane, started on
// first use (see e2e/cluster); the generator tests do not start it.
func TestMain(m *testing.M) { os.Exit(cluster.RunTests(m)) }

// requestCounter counts the requests of a client by Kubernetes verb (get, list, watch,
// create, update, patch, delete) and can run a hook before each request is sent.
// Use [countRequests] to attach one to a rest.Config.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int // by verb
	log    []string       // "verb resource[/name]", for failure messages
	before func(verb, resource string)
}

// countRequests returns a copy of cfg whose requests are counted, and the counter.
func countRequests(cfg *rest.Config) (*rest.Config, *requestCounter) {
	c := &requestCounter{counts: map[string]int{}}
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			verb, resource := requestVerb(req)
			c.mu.Lock()
			c.counts[verb]++
			c.log = append(c.log, verb+" "+resource)
			hook := c.before
			c.mu.Unlock()
			if hook != nil {
				hook(verb, resource)
			}
			return rt.RoundTrip(req)
		})
	})
	return cfg, c
}

// newCountingClient returns a clientset for cfg whose requests are counted.
func newCountingClient(t testing.TB, cfg *rest.Config) (kubernetes.Interface, *requestCounter) {
	t.Helper()
	cfg, counter := countRequests(cfg)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	return client, counter
}

// setBefore installs a hook run before each request (nil removes it). The hook runs
// outside the counter's lock and may use other clients.
func (c *requestCounter) setBefore(hook func(verb, resource string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.before = hook
}

// count returns how many requests had the verb.
func (c *requestCounter) count(verb string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[verb]
}

// mutating returns how many requests could have changed something.
func (c *requestCounter) mutating() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for verb, k := range c.counts {
		switch verb {
		case "get", "list", "watch":
		default:
			n += k
		}
	}
	return n
}

// total returns how many requests were made.
func (c *requestCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.log)
}

// reset forgets the requests counted so far.
func (c *requestCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = map[string]int{}
	c.log = nil
}

// String lists the counts and the requests, for failure messages.
func (c *requestCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	verbs := make([]string, 0, len(c.counts))
	for v, n := range c.counts {
		verbs = append(verbs, fmt.Sprintf("%s=%d", v, n))
	}
	sort.Strings(verbs)
	return fmt.Sprintf("%s [%s]", strings.Join(verbs, " "), strings.Join(c.log, "; "))
}

// requestVerb derives the Kubernetes verb and the resource ("secrets" or
// "secrets/name") of a REST request from its method and path:
// /api/v1[/namespaces/<ns>]/<resource>[/<name>[/<subresource>]] and the same under
// /apis/<group>/<version>.
func requestVerb(req *http.Request) (verb, resource string) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return strings.ToLower(req.Method), req.URL.Path // discovery and others
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	collection := len(parts) <= 1
	resource = strings.Join(parts, "/")
	switch req.Method {
	case http.MethodGet:
		switch {
		case req.URL.Query().Get("watch") == "true":
			return "watch", resource
		case collection:
			return "list", resource
		}
		return "get", resource
	case http.MethodPost:
		return "create", resource
	case http.MethodPut:
		return "update", resource
	case http.MethodPatch:
		return "patch", resource
	case http.MethodDelete:
		if collection {
			return "deletecollection", resource
		}
		return "delete", resource
	}
	return strings.ToLower(req.Method), resource
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
