package source

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/fluxcd/pkg/git"
	"github.com/fluxcd/pkg/git/signature"
)

// VerifyMode is the kind of commit signature a Verification accepts.
type VerifyMode string

const (
	// VerifyOpenPGP accepts commits signed with one of the OpenPGP keys given
	// (git's default gpg.format).
	VerifyOpenPGP VerifyMode = "openpgp"
	// VerifySSH accepts commits signed with one of the SSH keys given
	// (gpg.format=ssh).
	VerifySSH VerifyMode = "ssh"
)

// Verification makes Fetch check the signature of the fetched commit (the commit
// itself, not a tag pointing at it).
type Verification struct {
	// Mode is VerifyOpenPGP or VerifySSH.
	Mode VerifyMode
	// Keys are the trusted public keys. For VerifyOpenPGP each element is an
	// ASCII-armored key ring ("-----BEGIN PGP PUBLIC KEY BLOCK-----"), which may
	// hold several keys; for VerifySSH each element holds public keys in
	// authorized_keys format, one per line. The values of a Flux verification
	// Secret can be passed as they are.
	Keys [][]byte
}

// ErrUnverified matches (errors.Is) every error of a commit whose signature did not
// verify; errors.As with *VerificationError gives the commit and the reason.
var ErrUnverified = errors.New("commit signature not verified")

// VerificationError says why a commit was refused.
type VerificationError struct {
	// Commit is the full hash of the refused commit.
	Commit string
	// Mode is the verification mode in force.
	Mode VerifyMode
	// Reason says what is wrong: not signed, signed in another format, or signed
	// with a key that is not trusted.
	Reason string
	// Err is the underlying error of the verification helper, if any.
	Err error
}

// Error names the commit, the mode and the reason.
func (e *VerificationError) Error() string {
	msg := fmt.Sprintf("commit %s refused: signature not verified (%s): %s", e.Commit, e.Mode, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrUnverified) true.
func (e *VerificationError) Is(target error) bool { return target == ErrUnverified }

// Unwrap returns the underlying error.
func (e *VerificationError) Unwrap() error { return e.Err }

// validate checks the mode and parses every key, so a broken key is a configuration
// error before any network access rather than a refused commit after a clone.
func (v *Verification) validate() error {
	if v == nil {
		return nil
	}
	if v.Mode != VerifyOpenPGP && v.Mode != VerifySSH {
		return fmt.Errorf("verify: mode %q is not supported (want %q or %q)", v.Mode, VerifyOpenPGP, VerifySSH)
	}
	if len(v.Keys) == 0 {
		return fmt.Errorf("verify: no trusted keys for mode %q", v.Mode)
	}
	for i, k := range v.Keys {
		switch v.Mode {
		case VerifyOpenPGP:
			if _, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(k)); err != nil {
				return fmt.Errorf("verify: key ring %d: not an armored OpenPGP public key ring: %w", i, err)
			}
		case VerifySSH:
			keys, err := signature.ParseAuthorizedKeys(string(k))
			if err != nil {
				return fmt.Errorf("verify: SSH keys %d: %w", i, err)
			}
			if len(keys) == 0 {
				return fmt.Errorf("verify: SSH keys %d: no key", i)
			}
		}
	}
	return nil
}

// verify checks c's signature with fluxcd's helpers and returns the verifying key's
// identity (OpenPGP key ID or SSH SHA256 fingerprint).
func (v *Verification) verify(c *git.Commit) (string, error) {
	refuse := func(reason string, err error) (string, error) {
		return "", &VerificationError{Commit: c.Hash.String(), Mode: v.Mode, Reason: reason, Err: err}
	}
	if got := c.SignatureType(); got != string(v.Mode) {
		if got == "empty" {
			return refuse("the commit is not signed", nil)
		}
		return refuse(fmt.Sprintf("the commit carries a %s signature", got), nil)
	}
	keys := make([]string, len(v.Keys))
	for i, k := range v.Keys {
		keys[i] = string(k)
	}
	var (
		signer string
		err    error
	)
	if v.Mode == VerifySSH {
		signer, err = c.VerifySSH(keys...)
	} else {
		signer, err = c.VerifyPGP(keys...)
	}
	if err != nil {
		return refuse("the signature does not verify with any trusted key", err)
	}
	return signer, nil
}
