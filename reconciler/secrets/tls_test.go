package secrets

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// verifyTLS checks that data holds a serving certificate for every name in valid and
// none in invalid, chaining to ca.crt and matching tls.key, at time at. It returns the
// serving certificate and the CA.
func verifyTLS(t *testing.T, data map[string][]byte, at time.Time, valid, invalid []string) (leaf, ca *x509.Certificate) {
	t.Helper()
	for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if len(data[k]) == 0 {
			t.Fatalf("no %s", k)
		}
	}
	if _, err := tls.X509KeyPair(data["tls.crt"], data["tls.key"]); err != nil {
		t.Fatalf("tls.crt and tls.key do not match: %v", err)
	}
	ca = parseCert(t, data["ca.crt"])
	leaf = parseCert(t, data["tls.crt"])
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range valid {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	for _, name := range invalid {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: at}); err == nil {
			t.Errorf("certificate verifies for %s", name)
		}
	}
	return leaf, ca
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		t.Errorf("more than one PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestSelfSignedTLS(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	names := []string{"demo.example.org", "*.demo.example.org"}
	data, err := selfSignedTLS(rand.Reader, "demo", names, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 3 {
		t.Errorf("keys %v, want tls.crt, tls.key, ca.crt", slices.Sorted(maps.Keys(data)))
	}
	valid := []string{"demo.example.org", "meet.demo.example.org", "chat.demo.example.org"}
	invalid := []string{"example.org", "a.b.demo.example.org", "demo.example.com", "evil.org"}
	leaf, ca := verifyTLS(t, data, now, valid, invalid)

	// Valid from now (minus the clock-skew allowance) for the documented periods.
	if got, want := ca.NotAfter, now.Add(CAValidity); !got.Equal(want) {
		t.Errorf("CA NotAfter %s, want %s", got, want)
	}
	if got, want := leaf.NotAfter, now.Add(CertValidity); !got.Equal(want) {
		t.Errorf("certificate NotAfter %s, want %s", got, want)
	}
	if !leaf.NotBefore.Before(now) || !ca.NotBefore.Before(now) {
		t.Errorf("NotBefore %s / %s is not before %s", leaf.NotBefore, ca.NotBefore, now)
	}
	verifyTLS(t, data, now.Add(CertValidity-time.Minute), valid, nil)
	verifyTLS(t, data, now.Add(CertValidity+time.Minute), nil, valid[:1])

	// ECDSA P-256 everywhere; the CA signs certificates only, one level deep, for the
	// workplace's domain only.
	for _, c := range []*x509.Certificate{leaf, ca} {
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", c.Subject, c.PublicKey)
		}
	}
	if block, _ := pem.Decode(data["tls.key"]); block == nil || block.Type != "PRIVATE KEY" {
		t.Error("tls.key is not a PKCS #8 PEM key")
	}
	if !ca.IsCA || ca.MaxPathLen != 0 || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA %v MaxPathLen %d KeyUsage %b", ca.IsCA, ca.MaxPathLen, ca.KeyUsage)
	}
	if !slices.Equal(ca.PermittedDNSDomains, []string{"demo.example.org"}) || !ca.PermittedDNSDomainsCritical {
		t.Errorf("CA name constraints %v (critical %v), want [demo.example.org]", ca.PermittedDNSDomains, ca.PermittedDNSDomainsCritical)
	}
	if leaf.IsCA || !slices.Equal(leaf.DNSNames, names) || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("certificate: IsCA %v DNSNames %v ExtKeyUsage %v", leaf.IsCA, leaf.DNSNames, leaf.ExtKeyUsage)
	}
	if leaf.SerialNumber.Sign() <= 0 || ca.SerialNumber.Sign() <= 0 || leaf.SerialNumber.Cmp(ca.SerialNumber) == 0 {
		t.Errorf("serial numbers %v and %v", leaf.SerialNumber, ca.SerialNumber)
	}

	again, err := selfSignedTLS(rand.Reader, "demo", names, now)
	if err != nil {
		t.Fatal(err)
	}
	if string(again["tls.key"]) == string(data["tls.key"]) || string(again["ca.crt"]) == string(data["ca.crt"]) {
		t.Error("two generations share a key or CA")
	}
}

func TestSelfSignedTLSRejectsBadNames(t *testing.T) {
	for _, names := range [][]string{nil, {""}, {"*."}, {"a.*.example.org"}, {"a b.example.org"}} {
		if _, err := selfSignedTLS(rand.Reader, "demo", names, time.Now()); err == nil {
			t.Errorf("%q: no error", names)
		}
	}
}

func TestMissingTLSKeys(t *testing.T) {
	v := []byte("SECRET-VALUE")
	for _, tc := range []struct {
		name    string
		data    map[string][]byte
		missing []string
		err     string
	}{
		{"empty", nil, []string{"ca.crt", "tls.crt", "tls.key"}, ""},
		{"other keys only", map[string][]byte{"foo": v}, []string{"ca.crt", "tls.crt", "tls.key"}, ""},
		{"complete", map[string][]byte{"tls.crt": v, "tls.key": v, "ca.crt": v}, nil, ""},
		{"own certificate without CA", map[string][]byte{"tls.crt": v, "tls.key": v}, nil, ""},
		{"certificate without key", map[string][]byte{"tls.crt": v}, nil, "has tls.crt but lacks ca.crt, tls.key"},
		{"key without certificate", map[string][]byte{"tls.key": v, "ca.crt": v}, nil, "has ca.crt, tls.key but lacks tls.crt"},
		{"CA only", map[string][]byte{"ca.crt": v}, nil, "has ca.crt but lacks tls.crt, tls.key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			missing, err := missingTLSKeys(tc.data)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), string(v)) {
				t.Errorf("error contains a value: %v", err)
			}
			if !slices.Equal(missing, tc.missing) {
				t.Errorf("missing %v, want %v", missing, tc.missing)
			}
		})
	}
}
