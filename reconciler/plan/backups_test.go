package plan_test

import (
	"strings"
	"testing"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// s3Repo is the example workplace on a profile "s3" extending minikube with the given
// spec.backups lines, and the workplace's spec lines replaced as given.
func s3Repo(t *testing.T, backups string, replace map[string]string) map[string]string {
	t.Helper()
	wp := strings.Replace(readExample(t), "profile: minikube", "profile: s3", 1)
	for from, to := range replace {
		if !strings.Contains(wp, from) {
			t.Fatalf("the example has no %q", from)
		}
		wp = strings.Replace(wp, from, to, 1)
	}
	return map[string]string{
		"workplace.yaml":   wp,
		"profiles/s3.yaml": "apiVersion: platzwart.io/v1alpha1\nkind: Profile\nmetadata:\n  name: s3\nspec:\n  extends: minikube\n  backups:\n" + backups,
	}
}

// planOf loads and plans a repository without rendering it.
func planOf(t *testing.T, files map[string]string) (*plan.Plan, error) {
	t.Helper()
	repo, err := load.FS(repoFS(files), "repo", platzwart.Builtin(), "")
	if err != nil {
		return nil, err
	}
	return plan.Build(repo.Workplaces[0], repo.Catalog)
}

const goodS3 = "    s3:\n      endpoint: https://s3.example.org\n      bucket: backups\n      credentialsSecret: backup-s3\n"

// TestS3BackupsBadInput: every mistake in a profile's spec.backups.s3 is refused
// before anything is planned, naming the profile's file, the document and the field.
func TestS3BackupsBadInput(t *testing.T) {
	for _, c := range []struct {
		name, backups string
		field, msg    string
	}{
		{"no endpoint", "    s3: {bucket: backups, credentialsSecret: backup-s3}\n", "spec.backups.s3.endpoint", "is required"},
		{"plain http", strings.Replace(goodS3, "https://", "http://", 1), "spec.backups.s3.endpoint", "only https://"},
		{"not a URL", strings.Replace(goodS3, "https://s3.example.org", `"https://s3 example.org"`, 1), "spec.backups.s3.endpoint", "is not a URL"},
		{"a path", strings.Replace(goodS3, "https://s3.example.org", "https://s3.example.org/backups", 1), "spec.backups.s3.endpoint", "without user, path, query or fragment"},
		{"user in the URL", strings.Replace(goodS3, "https://s3.example.org", "https://key:secret@s3.example.org", 1), "spec.backups.s3.endpoint", "without user"},
		{"no host", strings.Replace(goodS3, "https://s3.example.org", "https://:9000", 1), "spec.backups.s3.endpoint", "want https://host"},
		{"port out of range", strings.Replace(goodS3, "https://s3.example.org", "https://s3.example.org:99999", 1), "spec.backups.s3.endpoint", "port"},
		{"no bucket", strings.Replace(goodS3, "      bucket: backups\n", "", 1), "spec.backups.s3.bucket", "is required"},
		{"bucket with capitals", strings.Replace(goodS3, "bucket: backups", "bucket: Backups", 1), "spec.backups.s3.bucket", "is not an S3 bucket name"},
		{"bucket like an IP", strings.Replace(goodS3, "bucket: backups", `bucket: "10.0.0.1"`, 1), "spec.backups.s3.bucket", "is not an S3 bucket name"},
		{"bad region", goodS3 + "      region: EU Central\n", "spec.backups.s3.region", "is not a region name"},
		{"prefix with a leading slash", goodS3 + "      prefix: /demo\n", "spec.backups.s3.prefix", "without a leading or trailing"},
		{"prefix leaving its place", goodS3 + "      prefix: demo/../other\n", "spec.backups.s3.prefix", "segments"},
		{"no credentials Secret", strings.Replace(goodS3, "      credentialsSecret: backup-s3\n", "", 1), "spec.backups.s3.credentialsSecret", "keys themselves never go into Git"},
		{"credentials Secret no name", strings.Replace(goodS3, "credentialsSecret: backup-s3", "credentialsSecret: Backup_S3", 1), "spec.backups.s3.credentialsSecret", "is not a Secret name"},
		{"CA without a name", goodS3 + "      caSecret: {key: ca.pem}\n", "spec.backups.s3.caSecret.name", "is required"},
		{"unknown field", goodS3 + "      accessKeyID: AKIA0000\n", "spec.backups.s3.accessKeyID", "unknown field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := planOf(t, s3Repo(t, c.backups, nil))
			if err == nil {
				t.Fatalf("accepted:\n%s", c.backups)
			}
			for _, want := range []string{"repo/profiles/s3.yaml", `Profile "s3"`, c.field, c.msg} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// TestS3BackupTarget: the profile's S3 target reaches every release with its prefix
// defaulting to <namespace>/<workplace>, path-style addressing unless switched off,
// the workplace's registry mirror for the transfer image, and a CA: the one named,
// else the workplace's own (TLS SelfSigned: <workplace>-tls, ca.crt) for an endpoint
// on the workplace's domain only, else none (the image's public CAs). A profile
// extending it replaces the S3 target as a whole.
func TestS3BackupTarget(t *testing.T) {
	target := func(t *testing.T, files map[string]string) catalog.Backups {
		t.Helper()
		p, err := planOf(t, files)
		if err != nil {
			t.Fatal(err)
		}
		var out *catalog.Backups
		for _, r := range p.Releases {
			if out != nil && (r.Backups.S3 == nil) != (out.S3 == nil) {
				t.Fatalf("releases disagree on the backup target: %+v and %+v", r.Backups, *out)
			}
			b := r.Backups
			out = &b
		}
		return *out
	}

	b := target(t, s3Repo(t, goodS3, nil))
	s := b.S3
	if s == nil || s.Endpoint != "https://s3.example.org" || s.Bucket != "backups" || s.Prefix != "demo/demo" || s.CredentialsSecret != "backup-s3" ||
		s.CASecret != nil || s.PathStyle != nil || s.Registry != "" || b.Size != "2Gi" {
		t.Errorf("target %+v / %+v: want the profile's, prefix demo/demo, no CA (an endpoint off the domain), size 2Gi from minikube", b, s)
	}

	b = target(t, s3Repo(t, strings.Replace(goodS3, "https://s3.example.org", "https://s3.192.168.49.2.sslip.io:8443", 1),
		map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n  images: {registry: registry.example.org/mirror}\n"}))
	if ca := b.S3.CASecret; ca == nil || ca.Name != "demo-tls" || ca.Key != "ca.crt" || b.S3.Registry != "registry.example.org/mirror" {
		t.Errorf("endpoint on the workplace's domain: CA %+v, registry %q; want demo-tls ca.crt and the mirror", ca, b.S3.Registry)
	}

	b = target(t, s3Repo(t, goodS3+"      prefix: platzwart/prod\n      region: eu-central-1\n      pathStyle: false\n      caSecret: {name: company-ca}\n", nil))
	if s := b.S3; s.Prefix != "platzwart/prod" || s.Region != "eu-central-1" || s.PathStyle == nil || *s.PathStyle ||
		s.CASecret == nil || s.CASecret.Name != "company-ca" || s.CASecret.Key != "ca.crt" {
		t.Errorf("target %+v: want the profile's prefix, region, virtual-hosted style and company-ca with key ca.crt", s)
	}

	files := s3Repo(t, goodS3+"      region: eu-central-1\n", nil)
	files["workplace.yaml"] = strings.Replace(files["workplace.yaml"], "profile: s3", "profile: s3b", 1)
	files["profiles/s3b.yaml"] = "apiVersion: platzwart.io/v1alpha1\nkind: Profile\nmetadata:\n  name: s3b\nspec:\n  extends: s3\n  backups:\n" +
		"    s3:\n      endpoint: https://other.example.org\n      bucket: other\n      credentialsSecret: other-s3\n"
	if s := target(t, files).S3; s.Endpoint != "https://other.example.org" || s.Bucket != "other" || s.Region != "" {
		t.Errorf("extended target %+v: want the extending profile's S3 target whole (no region from the base)", s)
	}
}
