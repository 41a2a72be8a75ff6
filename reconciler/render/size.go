package render

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"helm.sh/helm/v3/pkg/release"
)

// Helm keeps every revision of a release in a Secret whose data holds the release
// encoded as base64(gzip(JSON)) (helm.sh/helm/v3 pkg/storage/driver/secrets.go
// newSecretsObject, util.go encodeRelease), and the API server refuses a Secret whose
// data exceeds 1 MiB. A release over the limit fails at install, after the releases
// before it were applied, so render refuses it first.
const (
	// SecretDataLimit is the API server's limit on a Secret's data (MaxSecretSize).
	SecretDataLimit = 1 << 20
	// ReleaseSizeLimit is the largest encoded release render accepts: the Secret limit
	// less a margin for what the real install adds (status, description, timestamps,
	// labels) and for the difference of an upgrade's record.
	ReleaseSizeLimit = SecretDataLimit - 32<<10
)

// EncodedSize is the size of rel as Helm's Secret storage driver stores it: the
// length of base64(gzip(JSON(rel))) at gzip.BestCompression, as Helm encodes it.
func EncodedSize(rel *release.Release) (int, error) {
	data, err := json.Marshal(rel)
	if err != nil {
		return 0, err
	}
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return 0, err
	}
	if _, err := w.Write(data); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return base64.StdEncoding.EncodedLen(buf.Len()), nil
}

// checkSize refuses a release Helm could not store.
func checkSize(rel *release.Release) (int, error) {
	size, err := EncodedSize(rel)
	if err != nil {
		return 0, fmt.Errorf("release %s: encoding it like Helm's storage: %w", rel.Name, err)
	}
	if size > ReleaseSizeLimit {
		return size, fmt.Errorf("release %s is %s as Helm stores it (gzip and base64 of chart, values and manifests), over the limit of %s (a Secret holds at most %s): make its values or chart files smaller",
			rel.Name, kib(size), kib(ReleaseSizeLimit), kib(SecretDataLimit))
	}
	return size, nil
}

// kib formats a byte count in KiB.
func kib(n int) string { return fmt.Sprintf("%d KiB (%d bytes)", n>>10, n) }
