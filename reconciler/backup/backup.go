// Package backup reads what the postgresql chart's backup script reports: one verified
// dump of a database (charts/postgresql/templates/backup-configmap.yaml, backup.sh).
// The script dumps in pg_dump's custom format, lists and reads the dump back with
// pg_restore, and only then gives it its final name and prints a Record as one JSON
// line; restore.sh restores such a dump without dropping the database it replaces.
package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Record is one verified dump.
type Record struct {
	// Database that was dumped.
	Database string `json:"database"`
	// File is the dump's name in the backup directory.
	File string `json:"file"`
	// Bytes is the dump's size.
	Bytes int64 `json:"bytes"`
	// SHA256 is the hex SHA-256 of the dump.
	SHA256 string `json:"sha256"`
	// Entries is the number of entries in the dump's table of contents.
	Entries int `json:"entries"`
	// Started and Finished bound the dump and its verification.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

var (
	sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)
	dumpFile  = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*\.dump$`)
)

// ParseRecord reads the last non-empty line of the script's output as a Record and
// checks it: a dump file name, a size, a checksum and times in order.
func ParseRecord(output []byte) (Record, error) {
	lines := bytes.Split(bytes.TrimSpace(output), []byte("\n"))
	last := bytes.TrimSpace(lines[len(lines)-1])
	if len(last) == 0 {
		return Record{}, errors.New("backup script: no output")
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(last))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("backup script: the last line is not a backup record: %w", err)
	}
	var errs []error
	if r.Database == "" {
		errs = append(errs, errors.New("database is empty"))
	}
	if !dumpFile.MatchString(r.File) {
		errs = append(errs, fmt.Errorf("file %q is not a dump file name", r.File))
	}
	if r.Bytes <= 0 {
		errs = append(errs, fmt.Errorf("size %d", r.Bytes))
	}
	if !sha256Hex.MatchString(r.SHA256) {
		errs = append(errs, fmt.Errorf("sha256 %q is not a hex SHA-256", r.SHA256))
	}
	if r.Started.IsZero() || r.Finished.Before(r.Started) {
		errs = append(errs, fmt.Errorf("times %s … %s", r.Started.Format(time.RFC3339), r.Finished.Format(time.RFC3339)))
	}
	if err := errors.Join(errs...); err != nil {
		return Record{}, fmt.Errorf("backup script: invalid record: %w", err)
	}
	return r, nil
}
