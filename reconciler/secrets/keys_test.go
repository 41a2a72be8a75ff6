package secrets

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/platzwart/platzwart/reconciler/catalog"
)

// parseKey decodes one PKCS#8 PEM private key and nothing else.
func parseKey(t *testing.T, v []byte) any {
	t.Helper()
	block, rest := pem.Decode(v)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("not a PKCS#8 PEM block: %q", v)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("trailing data after the key: %q", rest)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestGenerateRSAKey: format rsa yields a PKCS#8 PEM RSA key (what Matrix
// Authentication Service's secrets.keys[].key_file needs), 2048 bits by default,
// the length in bits otherwise, and a different key each time.
func TestGenerateRSAKey(t *testing.T) {
	for _, tc := range []struct {
		gen  catalog.Generator
		bits int
	}{
		{catalog.Generator{Format: "rsa"}, 2048},
		{catalog.Generator{Format: "rsa", Length: 3072}, 3072},
	} {
		v, err := generate(rand.Reader, tc.gen)
		if err != nil {
			t.Fatal(err)
		}
		key, ok := parseKey(t, v).(*rsa.PrivateKey)
		if !ok {
			t.Fatalf("%+v: not an RSA key", tc.gen)
		}
		if key.N.BitLen() != tc.bits {
			t.Errorf("%+v: %d bits, want %d", tc.gen, key.N.BitLen(), tc.bits)
		}
		if err := key.Validate(); err != nil {
			t.Error(err)
		}
		w, err := generate(rand.Reader, tc.gen)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(v, w) {
			t.Error("two keys are equal")
		}
	}
}

// TestGenerateECDSAP256Key: format ecdsa-p256 yields a PKCS#8 PEM P-256 key.
func TestGenerateECDSAP256Key(t *testing.T) {
	v, err := generate(rand.Reader, catalog.Generator{Format: "ecdsa-p256"})
	if err != nil {
		t.Fatal(err)
	}
	key, ok := parseKey(t, v).(*ecdsa.PrivateKey)
	if !ok {
		t.Fatal("not an ECDSA key")
	}
	if key.Curve != elliptic.P256() {
		t.Errorf("curve %s, want P-256", key.Curve.Params().Name)
	}
}

func TestGenerateRejectsBadKeyGenerators(t *testing.T) {
	for _, tc := range []struct {
		gen  catalog.Generator
		want string
	}{
		{catalog.Generator{Format: "rsa", Length: 1024}, "rsa: length 1024"},
		{catalog.Generator{Format: "rsa", Length: 8192}, "rsa: length 8192"},
		{catalog.Generator{Format: "ecdsa-p256", Length: 32}, "ecdsa-p256: length 32"},
	} {
		_, err := generate(rand.Reader, tc.gen)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.gen, err, tc.want)
		}
	}
}
