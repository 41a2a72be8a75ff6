package controller

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/platzwart/platzwart/reconciler/guard"
)

func claimsOf(w types.NamespacedName, hosts ...string) []guard.Claim {
	var out []guard.Claim
	for _, h := range hosts {
		c := guard.Claim{File: w.Namespace + ".yaml", Workplace: w.String(), Component: "identity"}
		c.Host = h
		out = append(out, c)
	}
	return out
}

func TestHostClaims(t *testing.T) {
	var h hostClaims
	a := types.NamespacedName{Namespace: "a", Name: "demo"}
	b := types.NamespacedName{Namespace: "b", Name: "demo"}
	if err := h.claim(a, claimsOf(a, "id.a.example", "chat.a.example")); err != nil {
		t.Fatal(err)
	}
	err := h.claim(b, claimsOf(b, "ID.a.example"))
	if err == nil || !strings.Contains(err.Error(), "a/demo") || !strings.Contains(err.Error(), "b/demo") {
		t.Fatalf("a host of a, in another case, claimed by b: %v, want an error naming both", err)
	}
	if err := h.claim(b, claimsOf(b, "id.b.example")); err != nil {
		t.Fatalf("b's own host: %v", err)
	}
	// a gives up chat.a.example: b may take it; a's other host stays a's.
	if err := h.claim(a, claimsOf(a, "id.a.example")); err != nil {
		t.Fatal(err)
	}
	if err := h.claim(b, claimsOf(b, "id.b.example", "chat.a.example")); err != nil {
		t.Fatalf("a host a dropped: %v", err)
	}
	if err := h.claim(b, claimsOf(b, "id.a.example")); err == nil {
		t.Fatal("a's remaining host taken by b")
	}
	// A refused claim leaves b's claims as they were.
	if err := h.claim(a, claimsOf(a, "chat.a.example")); err == nil {
		t.Fatal("b's host taken back by a")
	}
	h.forget(b)
	if err := h.claim(a, claimsOf(a, "id.a.example", "chat.a.example", "id.b.example")); err != nil {
		t.Fatalf("hosts of a forgotten Workplace: %v", err)
	}
}

// BenchmarkHostClaim is one Workplace's claim among 1,000 others: it looks at the
// holders of its own hosts only.
func BenchmarkHostClaim(b *testing.B) {
	var h hostClaims
	for i := range 1000 {
		w := types.NamespacedName{Namespace: fmt.Sprintf("w%04d", i), Name: "demo"}
		if err := h.claim(w, claimsOf(w, "id."+w.Namespace+".example", "chat."+w.Namespace+".example", "files."+w.Namespace+".example")); err != nil {
			b.Fatal(err)
		}
	}
	w := types.NamespacedName{Namespace: "w0500", Name: "demo"}
	cs := claimsOf(w, "id.w0500.example", "chat.w0500.example", "files.w0500.example")
	b.ReportAllocs()
	for b.Loop() {
		if err := h.claim(w, cs); err != nil {
			b.Fatal(err)
		}
	}
}
