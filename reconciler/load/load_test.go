package load

import (
	"strings"
	"testing"
)

func TestValidateDomainRefusesIPAddresses(t *testing.T) {
	for domain, suggestion := range map[string]string{
		"192.168.49.2":  "192.168.49.2.sslip.io",
		"10.0.0.1":      "10.0.0.1.sslip.io",
		"2001:db8::1":   "2001-db8--1.sslip.io",
		"[2001:db8::1]": "2001-db8--1.sslip.io",
	} {
		err := ValidateDomain(domain)
		if err == nil || !strings.Contains(err.Error(), "an IP address cannot be an Ingress host") || !strings.Contains(err.Error(), suggestion) {
			t.Errorf("ValidateDomain(%q) = %v; want a refusal suggesting %s", domain, err, suggestion)
		}
	}
	for _, domain := range []string{"192.168.49.2.sslip.io", "example.org", "a.b.example.org"} {
		if err := ValidateDomain(domain); err != nil {
			t.Errorf("ValidateDomain(%q): %v", domain, err)
		}
	}
	// In a document, the error names file, Workplace and field.
	dir := repoDir(t, map[string]string{"workplace.yaml": strings.Replace(testWorkplace, "example.org", "192.168.49.2", 1)})
	_, err := loadWithin(t, dir, DefaultLimits())
	want := `repo/workplace.yaml: Workplace "demo": spec.domain: invalid domain "192.168.49.2": an IP address`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("loading a workplace with an IP domain: %v; want %q", err, want)
	}
}
