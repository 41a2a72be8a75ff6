package secrets

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Validity of the generated certificates.
//
// The serving certificate is valid for 825 days: renewal is not implemented yet, and
// 825 days is the longest validity Apple platforms accept for any TLS server
// certificate, including those of a locally trusted CA (the 398-day limit of browsers
// applies to publicly trusted CAs only). The CA lives for ten years, so that a renewed
// serving certificate could one day be issued without users trusting a new CA again —
// but as the CA's key is discarded, renewal will have to bring a new CA or keep its key.
const (
	// CAValidity is how long the self-signed CA is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// CertValidity is how long the serving certificate is valid.
	CertValidity = 825 * 24 * time.Hour
	// backdate moves NotBefore into the past to tolerate clock skew between machines.
	backdate = time.Hour
)

// Keys of a generated kubernetes.io/tls Secret.
const (
	keyCert = corev1.TLSCertKey       // tls.crt: the serving certificate (PEM)
	keyKey  = corev1.TLSPrivateKeyKey // tls.key: its private key (PKCS #8 PEM)
	keyCA   = "ca.crt"                // ca.crt: the CA certificate (PEM), for clients to trust
)

// selfSignedTLS creates a CA (ECDSA P-256) and a serving certificate (ECDSA P-256) for
// dnsNames signed by it, and returns the data of a kubernetes.io/tls Secret. The CA is
// name-constrained to the DNS names' domains, so that trusting it (as users of a
// self-signed workplace must) does not let it vouch for any other site; its private key
// is not kept.
func selfSignedTLS(random io.Reader, workplace string, dnsNames []string, now time.Time) (map[string][]byte, error) {
	domains, err := permittedDomains(dnsNames)
	if err != nil {
		return nil, err
	}

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTemplate := &x509.Certificate{
		Subject: pkix.Name{
			Organization: []string{"platzwart"},
			CommonName:   commonName("platzwart CA " + workplace),
		},
		NotBefore:                   now.Add(-backdate),
		NotAfter:                    now.Add(CAValidity),
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid:       true,
		IsCA:                        true,
		MaxPathLenZero:              true,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         domains,
	}
	caDER, err := x509.CreateCertificate(random, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, fmt.Errorf("generate serving key: %w", err)
	}
	template := &x509.Certificate{
		Subject: pkix.Name{
			Organization: []string{"platzwart"},
			CommonName:   commonName(dnsNames[0]),
		},
		DNSNames:              slices.Clone(dnsNames),
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(random, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode serving key: %w", err)
	}
	return map[string][]byte{
		keyCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyKey:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		keyCA:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}, nil
}

// permittedDomains returns the domains a CA for dnsNames is constrained to: the names
// without a leading "*.", without duplicates. It rejects an empty list and names that
// are empty or have a wildcard elsewhere than as the whole first label.
func permittedDomains(dnsNames []string) ([]string, error) {
	if len(dnsNames) == 0 {
		return nil, errors.New("no DNS names for the certificate")
	}
	var domains []string
	for _, n := range dnsNames {
		d := strings.TrimPrefix(n, "*.")
		if d == "" || strings.ContainsAny(d, "* \t\r\n") {
			return nil, fmt.Errorf("invalid DNS name %q", n)
		}
		if !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
	}
	return domains, nil
}

// commonName shortens s to the 64 characters RFC 5280 allows in a common name. The
// common name is informational only: clients match the DNS names.
func commonName(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// missingTLSKeys returns the keys a generated TLS Secret would add to existing data.
// A Secret with tls.crt and tls.key is complete (ca.crt cannot be made for a certificate
// platzwart did not issue, so it is not added). A Secret with none of the three keys
// gets all of them. Anything in between cannot be completed without replacing what is
// there, and is an error naming the keys (never their values).
func missingTLSKeys(data map[string][]byte) ([]string, error) {
	var have, lack []string
	for _, k := range []string{keyCA, keyCert, keyKey} {
		if _, ok := data[k]; ok {
			have = append(have, k)
		} else {
			lack = append(lack, k)
		}
	}
	switch {
	case len(have) == 0:
		return lack, nil
	case slices.Contains(have, keyCert) && slices.Contains(have, keyKey):
		return nil, nil
	}
	return nil, fmt.Errorf("has %s but lacks %s: a certificate cannot be generated to match what is there; complete the Secret or delete it to have it generated",
		strings.Join(have, ", "), strings.Join(lack, ", "))
}
