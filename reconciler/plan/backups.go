package plan

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/catalog"
)

var (
	// bucketName is S3's rule for bucket names: 3 to 63 lowercase letters, digits,
	// dots and hyphens, starting and ending with a letter or digit.
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	// regionName is a region as S3 services name them (us-east-1, eu-central-003, fr-par).
	regionName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	// keySegment is one segment of an object key prefix.
	keySegment = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

// checkBackups validates a profile's spec.backups, naming the field of the first
// mistake (the caller adds file and document).
func checkBackups(b *catalog.Backups) (field string, err error) {
	if b.Size != "" {
		if q, err := resource.ParseQuantity(b.Size); err != nil || q.Sign() <= 0 {
			return "spec.backups.size", fmt.Errorf("%q is not a positive quantity such as 10Gi", b.Size)
		}
	}
	if b.S3 == nil {
		return "", nil
	}
	return checkS3(b.S3)
}

// checkS3 validates spec.backups.s3.
func checkS3(s *catalog.S3Backups) (field string, err error) {
	const f = "spec.backups.s3."
	if s.Endpoint == "" {
		return f + "endpoint", fmt.Errorf("the S3 API's URL is required, such as https://s3.example.org")
	}
	u, err := url.Parse(s.Endpoint)
	switch {
	case err != nil:
		return f + "endpoint", fmt.Errorf("%q is not a URL: %w", s.Endpoint, err)
	case u.Scheme != "https":
		return f + "endpoint", fmt.Errorf("%q: only https:// (the access keys and the dumps must not cross the network in the clear)", s.Endpoint)
	case u.Hostname() == "" || u.User != nil || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "":
		return f + "endpoint", fmt.Errorf("%q: want https://host or https://host:port, without user, path, query or fragment (the bucket is spec.backups.s3.bucket)", s.Endpoint)
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return f + "endpoint", fmt.Errorf("%q: port %q: %w", s.Endpoint, p, err)
		}
	}
	if s.Bucket == "" {
		return f + "bucket", fmt.Errorf("the bucket is required (it must exist: platzwart never creates one)")
	}
	if !bucketName.MatchString(s.Bucket) || strings.Contains(s.Bucket, "..") || net.ParseIP(s.Bucket) != nil {
		return f + "bucket", fmt.Errorf("%q is not an S3 bucket name (3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit)", s.Bucket)
	}
	if s.Region != "" && !regionName.MatchString(s.Region) {
		return f + "region", fmt.Errorf("%q is not a region name (lowercase letters, digits and '-')", s.Region)
	}
	if s.Prefix != "" {
		for _, seg := range strings.Split(s.Prefix, "/") {
			if !keySegment.MatchString(seg) || seg == "." || seg == ".." {
				return f + "prefix", fmt.Errorf("%q: want segments of letters, digits, '.', '_' and '-' separated by single '/', without a leading or trailing '/'", s.Prefix)
			}
		}
		if len(s.Prefix) > 512 {
			return f + "prefix", fmt.Errorf("%d characters: at most 512", len(s.Prefix))
		}
	}
	if s.CredentialsSecret == "" {
		return f + "credentialsSecret", fmt.Errorf("name the Secret in the workplace's namespace with the keys accessKeyID and secretAccessKey (the keys themselves never go into Git)")
	}
	if msgs := validation.IsDNS1123Subdomain(s.CredentialsSecret); len(msgs) > 0 {
		return f + "credentialsSecret", fmt.Errorf("%q is not a Secret name: %s", s.CredentialsSecret, strings.Join(msgs, "; "))
	}
	if ca := s.CASecret; ca != nil {
		if ca.Name == "" {
			return f + "caSecret.name", fmt.Errorf("the name of the Secret with the endpoint's CA certificate is required")
		}
		if msgs := validation.IsDNS1123Subdomain(ca.Name); len(msgs) > 0 {
			return f + "caSecret.name", fmt.Errorf("%q is not a Secret name: %s", ca.Name, strings.Join(msgs, "; "))
		}
		if ca.Key != "" {
			if msgs := validation.IsConfigMapKey(ca.Key); len(msgs) > 0 {
				return f + "caSecret.key", fmt.Errorf("%q is not a Secret key: %s", ca.Key, strings.Join(msgs, "; "))
			}
		}
	}
	return "", nil
}

// backupsFor is the profile's backup target for one workplace: with S3, the prefix
// defaults to <namespace>/<workplace>, the transfer image comes from the workplace's
// registry mirror, and an endpoint on the workplace's domain
// (served through the workplace's own routing) trusts the workplace's CA unless the
// profile names another. The workplace CA of TLS mode SelfSigned is name-constrained
// to the domain, and rclone's --ca-cert replaces the public CAs, so it is never
// given for another endpoint.
func backupsFor(b catalog.Backups, w *v1alpha1.Workplace, workplaceCA *v1alpha1.SecretKeyRef) catalog.Backups {
	if b.S3 == nil {
		return b
	}
	namespace, workplace, domain := w.Namespace, w.Name, w.Spec.Domain
	s := *b.S3
	if w.Spec.Images != nil {
		s.Registry = w.Spec.Images.Registry
	}
	if s.Prefix == "" {
		s.Prefix = namespace + "/" + workplace
	}
	if s.CASecret == nil && workplaceCA != nil && onDomain(s.Endpoint, domain) {
		ca := *workplaceCA
		s.CASecret = &ca
	}
	if s.CASecret != nil && s.CASecret.Key == "" {
		ca := *s.CASecret
		ca.Key = SelfSignedCAKey
		s.CASecret = &ca
	}
	b.S3 = &s
	return b
}

// onDomain reports whether the endpoint's host is the domain or below it.
func onDomain(endpoint, domain string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || domain == "" {
		return false
	}
	h := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	return h == d || strings.HasSuffix(h, "."+d)
}
