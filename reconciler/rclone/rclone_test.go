package rclone_test

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/rclone"
)

func env(c corev1.Container) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, v := range c.Env {
		out[v.Name] = v
	}
	return out
}

// TestS3Containers: the upload container names the object <prefix>/<file>, takes
// the settings from the target (region only when set, virtual-hosted style when
// path style is switched off, the registry mirror) and the keys as Secret references;
// without a CA it mounts none and rclone keeps the image's CAs. The download built
// from it has the same settings, the object as source and the dump volume writable.
func TestS3Containers(t *testing.T) {
	target := catalog.S3Backups{Endpoint: "https://s3.example.org", Bucket: "backups", Prefix: "demo/demo", CredentialsSecret: "backup-s3"}
	up, volumes := rclone.Upload(target, "backups", "/backups", "db.dump")
	e := env(up)
	if _, ok := e["RCLONE_S3_REGION"]; ok || e["RCLONE_S3_FORCE_PATH_STYLE"].Value != "true" || e["RCLONE_S3_PROVIDER"].Value != "Other" ||
		e["RCLONE_S3_ENDPOINT"].Value != target.Endpoint || e["RCLONE_S3_NO_CHECK_BUCKET"].Value != "true" {
		t.Errorf("environment %+v", up.Env)
	}
	if _, ok := e["RCLONE_CA_CERT"]; ok || len(volumes) != 0 || len(up.VolumeMounts) != 1 || !up.VolumeMounts[0].ReadOnly {
		t.Errorf("without a CA: env %+v, volumes %+v, mounts %+v; want the dump volume read-only only", up.Env, volumes, up.VolumeMounts)
	}
	for _, name := range []string{"RCLONE_S3_ACCESS_KEY_ID", "RCLONE_S3_SECRET_ACCESS_KEY"} {
		if v := e[name]; v.Value != "" || v.ValueFrom == nil || v.ValueFrom.SecretKeyRef == nil || v.ValueFrom.SecretKeyRef.Name != "backup-s3" {
			t.Errorf("%s %+v, want a Secret reference", name, v)
		}
	}
	wantCmd := []string{"rclone", "copyto", "--config=/dev/null", "--immutable", "--verbose", "/backups/db.dump", ":s3:backups/demo/demo/db.dump"}
	if up.Image != rclone.Image || !slices.Equal(up.Command, wantCmd) {
		t.Errorf("upload %s %q, want %s %q", up.Image, up.Command, rclone.Image, wantCmd)
	}
	if o := rclone.ObjectOf(target, "db.dump"); o != (v1alpha1.S3Object{Endpoint: target.Endpoint, Bucket: "backups", Key: "demo/demo/db.dump"}) || o.String() != "s3://backups/demo/demo/db.dump" {
		t.Errorf("object %+v (%s)", o, o)
	}

	target.Region, target.PathStyle, target.Registry = "eu-central-1", ptr.To(false), "registry.example.org/mirror"
	target.CASecret = &v1alpha1.SecretKeyRef{Name: "company-ca", Key: "ca.pem"}
	up, volumes = rclone.Upload(target, "backups", "/backups", "db.dump")
	e = env(up)
	if e["RCLONE_S3_REGION"].Value != "eu-central-1" || e["RCLONE_S3_FORCE_PATH_STYLE"].Value != "false" || up.Image != "registry.example.org/mirror/rclone/rclone:1.76.0" {
		t.Errorf("environment %+v image %s", up.Env, up.Image)
	}
	if len(volumes) != 1 || volumes[0].Secret == nil || volumes[0].Secret.SecretName != "company-ca" || volumes[0].Secret.Items[0].Key != "ca.pem" ||
		e["RCLONE_CA_CERT"].Value != "/etc/platzwart/s3-ca/ca.crt" || volumes[0].Secret.Items[0].Path != "ca.crt" {
		t.Errorf("CA: volumes %+v, RCLONE_CA_CERT %q", volumes, e["RCLONE_CA_CERT"].Value)
	}

	spec := corev1.PodSpec{Containers: []corev1.Container{up}, Volumes: volumes}
	if got := rclone.Secrets(spec, up); !slices.Equal(got, []string{"backup-s3", "company-ca"}) {
		t.Errorf("secrets %v", got)
	}
	down := rclone.Download(up, rclone.ObjectOf(target, "db.dump"), "scratch", "/restore", "db.dump")
	if down.Image != up.Image || !slices.Equal(down.Command, []string{"rclone", "copyto", "--config=/dev/null", "--verbose", ":s3:backups/demo/demo/db.dump", "/restore/db.dump"}) {
		t.Errorf("download %s %q", down.Image, down.Command)
	}
	if !slices.EqualFunc(down.Env, up.Env, func(a, b corev1.EnvVar) bool {
		return a.Name == b.Name && a.Value == b.Value && (a.ValueFrom == nil) == (b.ValueFrom == nil)
	}) {
		t.Errorf("download env %+v, want the upload's", down.Env)
	}
	if len(down.VolumeMounts) != 2 || down.VolumeMounts[0].Name != "scratch" || down.VolumeMounts[0].ReadOnly || down.VolumeMounts[1].Name != "s3-ca" {
		t.Errorf("download mounts %+v, want the scratch volume writable and the CA", down.VolumeMounts)
	}
}
