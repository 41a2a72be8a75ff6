package controller

import (
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/platzwart/platzwart/reconciler/guard"
)

// hostClaims remembers the hosts of every Workplace this controller is reconciling or
// has applied, so that two Workplaces reconciled at the same moment (two new ones in
// one commit, or in two namespaces) cannot both take one host: the preflight compares
// a change only with the Ingresses and HTTPRoutes that already exist, and neither
// exists yet. The first Workplace to claim a host keeps it; the other is refused,
// naming both, and tried again later.
//
// A claim is dropped when the Workplace's reconcile is refused before it wrote
// anything (so a Workplace that lost to an installed one does not block it after a
// restart: the installed one's routes exist, and its claim comes back with its next
// reconcile) and when the Workplace is deleted. Only this process's Workplaces are
// known: a second controller install, or `platzwart apply`, is caught by the preflight
// once the first one's routes exist.
type hostClaims struct {
	mu     sync.Mutex
	claims map[types.NamespacedName][]guard.Claim
	// holder indexes the claims by host (lower case): a claim is checked against the
	// Workplaces holding its hosts only, not against every Workplace (at 1,000
	// Workplaces a scan of all claims per reconcile was 8 % of the converge's CPU).
	holder map[string]types.NamespacedName
}

// claim records the hosts of w unless another Workplace holds one of them; the error
// names both claimants (guard.HostsAcrossWorkplaces).
func (h *hostClaims) claim(w types.NamespacedName, cs []guard.Claim) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	others := map[types.NamespacedName]bool{}
	for _, c := range cs {
		if o, ok := h.holder[strings.ToLower(c.Host)]; ok && o != w {
			others[o] = true
		}
	}
	if len(others) > 0 {
		all := slices.Clone(cs)
		for o := range others {
			all = append(all, h.claims[o]...)
		}
		if err := guard.HostsAcrossWorkplaces(all); err != nil {
			return err
		}
	}
	if h.claims == nil {
		h.claims = map[types.NamespacedName][]guard.Claim{}
		h.holder = map[string]types.NamespacedName{}
	}
	h.drop(w)
	h.claims[w] = slices.Clone(cs)
	for _, c := range cs {
		h.holder[strings.ToLower(c.Host)] = w
	}
	return nil
}

// forget drops the claims of w.
func (h *hostClaims) forget(w types.NamespacedName) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drop(w)
}

// drop removes the claims of w; h.mu is held.
func (h *hostClaims) drop(w types.NamespacedName) {
	for _, c := range h.claims[w] {
		if host := strings.ToLower(c.Host); h.holder[host] == w {
			delete(h.holder, host)
		}
	}
	delete(h.claims, w)
}
