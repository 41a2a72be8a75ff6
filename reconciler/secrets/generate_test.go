package secrets

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/platzwart/platzwart/reconciler/catalog"
)

// cyclicReader yields the bytes 0, 1, …, 255, 0, 1, … forever.
type cyclicReader struct{ next byte }

func (r *cyclicReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	return len(p), nil
}

func TestGenerateLengthAndAlphabet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		gen   catalog.Generator
		chars string
		n     int
	}{
		{"default", catalog.Generator{}, alphanumeric, 32},
		{"alphanumeric", catalog.Generator{Format: "alphanumeric", Length: 48}, alphanumeric, 48},
		{"length only", catalog.Generator{Length: 1}, alphanumeric, 1},
		{"hex", catalog.Generator{Format: "hex", Length: 64}, hexDigits, 64},
		{"odd hex", catalog.Generator{Format: "hex", Length: 7}, hexDigits, 7},
		{"hex default length", catalog.Generator{Format: "hex"}, hexDigits, 32},
		{"longest", catalog.Generator{Length: 4096}, alphanumeric, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := generate(rand.Reader, tc.gen)
			if err != nil {
				t.Fatal(err)
			}
			if len(v) != tc.n {
				t.Errorf("length %d, want %d", len(v), tc.n)
			}
			for i, c := range v {
				if !strings.ContainsRune(tc.chars, rune(c)) {
					t.Fatalf("character %d (%q) is not in %q", i, c, tc.chars)
				}
			}
			w, err := generate(rand.Reader, tc.gen)
			if err != nil {
				t.Fatal(err)
			}
			if tc.n >= 16 && bytes.Equal(v, w) {
				t.Error("two values are equal")
			}
		})
	}
}

func TestGenerateRejectsBadGenerators(t *testing.T) {
	for _, tc := range []struct {
		gen  catalog.Generator
		want string
	}{
		{catalog.Generator{Format: "base64"}, `unknown format "base64"`},
		{catalog.Generator{Length: -1}, "length -1"},
		{catalog.Generator{Length: 4097}, "length 4097"},
	} {
		_, err := generate(rand.Reader, tc.gen)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.gen, err, tc.want)
		}
	}
}

func TestGenerateReportsReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	_, err := generate(iotest.ErrReader(boom), catalog.Generator{})
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want %v", err, boom)
	}
}

// TestNoModuloBias feeds every byte value equally often: 248 of 256 (4×62) are
// accepted and each alphanumeric character must come out exactly 4 times per cycle.
// With plain modulo, the first 8 characters would come out 5 times.
func TestNoModuloBias(t *testing.T) {
	const cycles = 10
	v, err := randomString(&cyclicReader{}, alphanumeric, 248*cycles)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[byte]int{}
	for _, c := range v {
		counts[c]++
	}
	if len(counts) != 62 {
		t.Errorf("%d distinct characters, want 62", len(counts))
	}
	for c, n := range counts {
		if n != 4*cycles {
			t.Errorf("%q drawn %d times, want %d", c, n, 4*cycles)
		}
	}

	// Hex: 16 divides 256, nothing is rejected.
	v, err = randomString(&cyclicReader{}, hexDigits, 256)
	if err != nil {
		t.Fatal(err)
	}
	counts = map[byte]int{}
	for _, c := range v {
		counts[c]++
	}
	for _, c := range []byte(hexDigits) {
		if counts[c] != 16 {
			t.Errorf("hex %q drawn %d times, want 16", c, counts[c])
		}
	}
}

// TestRejectedBytesAreSkipped checks that bytes 248–255 never select a character.
func TestRejectedBytesAreSkipped(t *testing.T) {
	stream := []byte{255, 254, 253, 252, 251, 250, 249, 248, 0, 248, 61, 255, 62}
	stream = append(stream, make([]byte, 64)...) // slack the generator may read ahead
	v, err := randomString(bytes.NewReader(stream), alphanumeric, 3)
	if err != nil {
		t.Fatal(err)
	}
	// 0 → 'A', 61 → '9', 62 → 62 % 62 = 0 → 'A'.
	if string(v) != "A9A" {
		t.Errorf("got %q, want %q", v, "A9A")
	}
}

// TestGenerateDistribution is a sanity check on crypto/rand output: a chi-square test
// over the 62 characters with a threshold a fair generator exceeds with probability
// far below one in a billion.
func TestGenerateDistribution(t *testing.T) {
	const perChar = 2000
	v, err := generate(rand.Reader, catalog.Generator{Length: 4096})
	if err != nil {
		t.Fatal(err)
	}
	for len(v) < 62*perChar {
		w, err := generate(rand.Reader, catalog.Generator{Length: 4096})
		if err != nil {
			t.Fatal(err)
		}
		v = append(v, w...)
	}
	v = v[:62*perChar]
	counts := map[byte]int{}
	for _, c := range v {
		counts[c]++
	}
	chi2 := 0.0
	for _, c := range []byte(alphanumeric) {
		d := float64(counts[c] - perChar)
		chi2 += d * d / perChar
	}
	// 61 degrees of freedom: mean 61, standard deviation 11.
	if chi2 > 160 {
		t.Errorf("chi-square %.1f over 61 degrees of freedom: the characters are not uniform", chi2)
	}
}
