package source

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/fluxcd/pkg/git"
	"github.com/fluxcd/pkg/ssh/knownhosts"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Auth holds the credentials of a Git source. Which fields apply depends on the
// URL's scheme: Username and Password, or BearerToken, for HTTPS; SSHPrivateKey and
// SSHKnownHosts (and Password as the key's passphrase) for SSH. Its String method
// never prints a secret.
type Auth struct {
	// Username and Password for HTTP basic authentication.
	Username string
	Password string
	// BearerToken for HTTP bearer authentication (not with Username/Password).
	BearerToken string
	// SSHPrivateKey is a PEM or OpenSSH private key; Password decrypts it if it is
	// encrypted.
	SSHPrivateKey []byte
	// SSHKnownHosts holds the server's host keys in known_hosts format (required
	// with SSH: an unknown host key fails the connection).
	SSHKnownHosts []byte
	// CACert holds PEM certificates trusted for HTTPS in addition to the system's.
	CACert []byte
}

// String describes the credentials without their secrets.
func (a Auth) String() string {
	var parts []string
	if a.Username != "" {
		parts = append(parts, fmt.Sprintf("user %q", a.Username))
	}
	if a.Password != "" {
		parts = append(parts, "password")
	}
	if a.BearerToken != "" {
		parts = append(parts, "bearer token")
	}
	if len(a.SSHPrivateKey) > 0 {
		parts = append(parts, "SSH key")
	}
	if len(a.SSHKnownHosts) > 0 {
		parts = append(parts, "known hosts")
	}
	if len(a.CACert) > 0 {
		parts = append(parts, "CA certificate")
	}
	if len(parts) == 0 {
		return "no credentials"
	}
	return strings.Join(parts, ", ")
}

// GoString is String, so %#v does not print secrets either.
func (a Auth) GoString() string { return "source.Auth{" + a.String() + "}" }

// Keys of a Secret holding Git credentials, as Flux's GitRepository reads them.
const (
	SecretUsername    = "username"
	SecretPassword    = "password"
	SecretBearerToken = "bearerToken"
	SecretIdentity    = "identity"
	SecretKnownHosts  = "known_hosts"
	SecretCACert      = "ca.crt"
	SecretCAFile      = "caFile" // older name of ca.crt
)

// AuthFromSecret reads credentials from a Secret's data with Flux's key conventions:
// username and password (basic auth), bearerToken, identity (SSH private key) with
// known_hosts (and password as the key's passphrase), ca.crt (or the older caFile).
// Other keys are ignored, except tls.crt and tls.key: client certificates are not
// supported and are refused rather than silently dropped. Errors name keys, never
// values.
func AuthFromSecret(data map[string][]byte) (Auth, error) {
	a := Auth{
		Username:      string(data[SecretUsername]),
		Password:      string(data[SecretPassword]),
		BearerToken:   string(data[SecretBearerToken]),
		SSHPrivateKey: data[SecretIdentity],
		SSHKnownHosts: data[SecretKnownHosts],
		CACert:        data[SecretCACert],
	}
	if len(a.CACert) == 0 {
		a.CACert = data[SecretCAFile]
	}
	if len(data["tls.crt"]) > 0 || len(data["tls.key"]) > 0 {
		return Auth{}, errors.New("secret: tls.crt/tls.key (TLS client certificates) are not supported")
	}
	ssh := len(a.SSHPrivateKey) > 0
	switch {
	case a.BearerToken != "" && (a.Username != "" || a.Password != ""):
		return Auth{}, fmt.Errorf("secret: %s cannot be combined with %s/%s", SecretBearerToken, SecretUsername, SecretPassword)
	case ssh && (a.Username != "" || a.BearerToken != ""):
		return Auth{}, fmt.Errorf("secret: %s (SSH) cannot be combined with %s or %s", SecretIdentity, SecretUsername, SecretBearerToken)
	case ssh && len(a.SSHKnownHosts) == 0:
		return Auth{}, fmt.Errorf("secret: %s needs %s", SecretIdentity, SecretKnownHosts)
	case !ssh && len(a.SSHKnownHosts) > 0:
		return Auth{}, fmt.Errorf("secret: %s needs %s", SecretKnownHosts, SecretIdentity)
	case !ssh && a.Password != "" && a.Username == "":
		return Auth{}, fmt.Errorf("secret: %s needs %s", SecretPassword, SecretUsername)
	}
	return a, nil
}

// authOptions checks a against the URL's transport and converts it to fluxcd's
// AuthOptions, which gogit's client takes.
func authOptions(u *url.URL, a Auth) (*git.AuthOptions, error) {
	o := &git.AuthOptions{Transport: git.TransportType(u.Scheme), Host: u.Host}
	switch o.Transport {
	case git.SSH:
		if a.Username != "" || a.BearerToken != "" {
			return nil, errors.New("auth: an ssh:// URL takes an SSH key, not a user name or bearer token (put the SSH user in the URL)")
		}
		if len(a.CACert) > 0 {
			return nil, errors.New("auth: a CA certificate applies to https:// URLs only")
		}
		if len(a.SSHPrivateKey) == 0 || len(a.SSHKnownHosts) == 0 {
			return nil, errors.New("auth: an ssh:// URL needs an SSH private key and known hosts")
		}
		o.Username = u.User.Username()
		if o.Username == "" {
			o.Username = git.DefaultPublicKeyAuthUser
		}
		o.Identity = a.SSHPrivateKey
		o.KnownHosts = a.SSHKnownHosts
		o.Password = a.Password // the key's passphrase
	default:
		if len(a.SSHPrivateKey) > 0 || len(a.SSHKnownHosts) > 0 {
			return nil, fmt.Errorf("auth: an SSH key or known hosts given for a %s:// URL", u.Scheme)
		}
		if a.BearerToken != "" && (a.Username != "" || a.Password != "") {
			return nil, errors.New("auth: basic auth and a bearer token cannot be combined")
		}
		hasCredentials := a.Username != "" || a.Password != "" || a.BearerToken != ""
		if o.Transport == git.HTTP && hasCredentials {
			return nil, errors.New("auth: credentials are never sent over plain http://, use https://")
		}
		if o.Transport == git.HTTP && len(a.CACert) > 0 {
			return nil, errors.New("auth: a CA certificate applies to https:// URLs only")
		}
		o.Username = a.Username
		o.Password = a.Password
		o.BearerToken = a.BearerToken
		o.CAFile = a.CACert
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return o, nil
}

// transportAuth builds go-git's auth method for the remote check (gogit builds its
// own for clones but does not export it).
func transportAuth(o *git.AuthOptions) (transport.AuthMethod, error) {
	switch o.Transport {
	case git.SSH:
		keys, err := gitssh.NewPublicKeys(o.Username, o.Identity, o.Password)
		if err != nil {
			return nil, fmt.Errorf("auth: SSH private key: %w", err)
		}
		callback, algorithms, err := knownhosts.New(o.KnownHosts)
		if err != nil {
			return nil, fmt.Errorf("auth: known hosts: %w", err)
		}
		// Offer the SHA-2 signature variants first when the known key is RSA.
		if len(algorithms) == 1 && algorithms[0] == "ssh-rsa" {
			algorithms = []string{"rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"}
		}
		keys.HostKeyCallback = callback
		keys.HostKeyAlgorithms = algorithms
		return keys, nil
	default:
		switch {
		case o.Username != "" || o.Password != "":
			return &githttp.BasicAuth{Username: o.Username, Password: o.Password}, nil
		case o.BearerToken != "":
			return &githttp.TokenAuth{Token: o.BearerToken}, nil
		}
		return nil, nil
	}
}

// lsRemote lists the remote's references (one request, no objects) and returns the
// commit hash the ref points at (tags peeled), or "" for a bare commit ref.
func (f *fetcher) lsRemote(ctx context.Context) (string, error) {
	auth, err := transportAuth(f.auth)
	if err != nil {
		return "", err
	}
	remote := gogit.NewRemote(memory.NewStorage(), &config.RemoteConfig{
		Name: git.DefaultRemote,
		URLs: []string{f.opts.URL},
	})
	refs, err := remote.ListContext(ctx, &gogit.ListOptions{
		Auth:          auth,
		CABundle:      f.auth.CAFile,
		PeelingOption: gogit.AppendPeeled,
	})
	if err != nil {
		return "", fmt.Errorf("list remote: %w", err)
	}
	name := f.opts.Ref.refName()
	if name == "" {
		return "", nil
	}
	var hash plumbing.Hash
	for _, r := range refs {
		switch r.Name() {
		case name + "^{}": // the commit an annotated tag points at
			return r.Hash().String(), nil
		case name:
			hash = r.Hash()
		}
	}
	if hash.IsZero() {
		return "", fmt.Errorf("%s not found on the remote", name)
	}
	return hash.String(), nil
}
