package secrets

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"github.com/platzwart/platzwart/reconciler/catalog"
)

// Generator formats and lengths, as the catalog defines and checks them.
const (
	formatAlphanumeric = "alphanumeric" // [A-Za-z0-9], the default
	formatHex          = "hex"          // [0-9a-f]
	formatRSA          = "rsa"          // PKCS#8 PEM RSA private key; length = bits
	formatECDSAP256    = "ecdsa-p256"   // PKCS#8 PEM ECDSA P-256 private key; no length
	defaultLength      = 32
	maxLength          = 4096
	defaultRSABits     = 2048
	minRSABits         = 2048
)

const (
	alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	hexDigits    = "0123456789abcdef"
)

// alphabet returns the characters a generator draws from and the length of the value,
// or an error naming what is wrong with it.
func alphabet(g catalog.Generator) (string, int, error) {
	n := g.Length
	switch {
	case n == 0:
		n = defaultLength
	case n < 0 || n > maxLength:
		return "", 0, fmt.Errorf("length %d is not between 1 and %d", g.Length, maxLength)
	}
	switch g.Format {
	case "", formatAlphanumeric:
		return alphanumeric, n, nil
	case formatHex:
		return hexDigits, n, nil
	}
	return "", 0, fmt.Errorf("unknown format %q (known: %s, %s, %s, %s)", g.Format, formatAlphanumeric, formatHex, formatRSA, formatECDSAP256)
}

// checkGenerator reports what is wrong with g without generating anything.
func checkGenerator(g catalog.Generator) error {
	switch g.Format {
	case formatRSA:
		if g.Length != 0 && (g.Length < minRSABits || g.Length > maxLength) {
			return fmt.Errorf("rsa: length %d (bits) is not between %d and %d", g.Length, minRSABits, maxLength)
		}
		return nil
	case formatECDSAP256:
		if g.Length != 0 {
			return fmt.Errorf("ecdsa-p256: length %d: the key size is fixed, leave length out", g.Length)
		}
		return nil
	}
	_, _, err := alphabet(g)
	return err
}

// privateKeyPEM encodes a private key as an unencrypted PKCS#8 PEM block.
func privateKeyPEM(key any) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// generate returns a value for g with randomness from random (crypto/rand.Reader
// outside tests). Private keys come from crypto/rand whatever random is (the Go
// key generators ignore their reader since Go 1.26).
func generate(random io.Reader, g catalog.Generator) ([]byte, error) {
	switch g.Format {
	case formatRSA:
		bits := g.Length
		if bits == 0 {
			bits = defaultRSABits
		}
		if bits < minRSABits || bits > maxLength {
			return nil, fmt.Errorf("rsa: length %d (bits) is not between %d and %d", g.Length, minRSABits, maxLength)
		}
		key, err := rsa.GenerateKey(random, bits)
		if err != nil {
			return nil, fmt.Errorf("generate RSA key: %w", err)
		}
		return privateKeyPEM(key)
	case formatECDSAP256:
		if g.Length != 0 {
			return nil, fmt.Errorf("ecdsa-p256: length %d: the key size is fixed, leave length out", g.Length)
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), random)
		if err != nil {
			return nil, fmt.Errorf("generate ECDSA P-256 key: %w", err)
		}
		return privateKeyPEM(key)
	}
	chars, n, err := alphabet(g)
	if err != nil {
		return nil, err
	}
	return randomString(random, chars, n)
}

// randomString returns n characters drawn uniformly from chars (at most 256 of them).
// Each character consumes one random byte; bytes at or above the largest multiple of
// len(chars) are rejected, so that byte % len(chars) has no modulo bias.
func randomString(random io.Reader, chars string, n int) ([]byte, error) {
	if len(chars) == 0 || len(chars) > 256 {
		return nil, errors.New("alphabet must have 1 to 256 characters")
	}
	limit := 256 - 256%len(chars) // accept bytes < limit (256 when len(chars) divides 256)
	out := make([]byte, 0, n)
	// Read with some slack for rejected bytes; loop for the rare case it is not enough.
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		if _, err := io.ReadFull(random, buf); err != nil {
			return nil, fmt.Errorf("read random bytes: %w", err)
		}
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			out = append(out, chars[int(b)%len(chars)])
			if len(out) == n {
				break
			}
		}
	}
	return out, nil
}
