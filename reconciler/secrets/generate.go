package secrets

import (
	"errors"
	"fmt"
	"io"

	"github.com/platzwart/platzwart/reconciler/catalog"
)

// Generator formats and lengths, as the catalog defines and checks them.
const (
	formatAlphanumeric = "alphanumeric" // [A-Za-z0-9], the default
	formatHex          = "hex"          // [0-9a-f]
	defaultLength      = 32
	maxLength          = 4096
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
	return "", 0, fmt.Errorf("unknown format %q (known: %s, %s)", g.Format, formatAlphanumeric, formatHex)
}

// generate returns a value for g with randomness from random (crypto/rand.Reader
// outside tests).
func generate(random io.Reader, g catalog.Generator) ([]byte, error) {
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
