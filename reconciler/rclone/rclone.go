// Package rclone builds the containers that copy a database dump to and from
// S3-compatible storage with the official rclone image: the upload container of
// the engine's backup Job (reconciler/release) and the download container of the
// restore Job (reconciler/restore). It knows nothing of clusters or plans.
//
// What the containers rely on, read in rclone v1.76.0 (the image's version, from the
// Go module proxy):
//   - The remote ":s3:<bucket>/<key>" is an on-the-fly remote: no config file, the
//     s3 backend with its options from the environment (fs/newfs.go ParseRemote; a
//     name starting with ":" is the backend's name). Each option of the s3 backend is
//     read from RCLONE_S3_<OPTION> (fs/configmap.go optionEnvVars, fs/config.go
//     OptionToEnv), so the credentials are Secret references in the environment and
//     never on the command line.
//   - Provider "Other" (backend/s3/provider/Other.yaml): signature V4, path-style
//     addressing by default (force_path_style: true), no multipart ETag check. An
//     empty region signs for us-east-1 (backend/s3/s3.go, NewFs).
//   - --config=/dev/null keeps the configuration in memory: nothing is read or written
//     (fs/config/config.go SetConfigPath), as the root filesystem is read-only.
//   - RCLONE_CA_CERT is the global flag --ca-cert from the environment
//     (fs/config/flags/flags.go installFlag; a list, comma-separated). It replaces
//     the trusted CAs with the files given (fs/fshttp/http.go: a new x509.CertPool
//     becomes RootCAs), which suits a client that talks to one endpoint only.
//   - Integrity: a single-part upload (below upload_cutoff, 200 MiB) sends the body's
//     MD5 as Content-MD5, which the server checks; a multipart upload sends each
//     part's MD5 the same way and stores the whole file's MD5 in the object's
//     metadata (X-Amz-Meta-Md5chksum) (backend/s3/s3.go prepareUpload and
//     uploadMultipart's part requests). After the upload rclone reads the object back
//     with HEAD (Object.Update) and compares size and MD5 with the local file,
//     failing with "corrupted on transfer" (fs/operations/copy.go verify). A download
//     is verified the same way against the object's MD5.
//   - An object appears only when its upload completes (S3's PutObject and
//     CompleteMultipartUpload); a failed multipart upload is aborted. --immutable
//     refuses to replace an existing object with different content (fs/config.go
//     option immutable), as backup.sh never overwrites a dump.
//   - The image (Dockerfile): alpine with ca-certificates, rclone in /usr/local/bin.
//
// Tested with a build of the same version against a real S3 server (versitygw):
// reconciler/backup TestBackupToS3AndRestore.
package rclone

import (
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/backup"
	"github.com/platzwart/platzwart/reconciler/catalog"
)

const (
	// Image is the official rclone image, pinned. Its tags are the release versions
	// without the "v" (docker/metadata-action type=semver,pattern={{version}} in
	// rclone's .github/workflows/build_publish_docker_image.yml).
	Image = "docker.io/rclone/rclone:1.76.0"

	// AccessKeyIDKey and SecretAccessKeyKey are the keys of the credentials Secret.
	AccessKeyIDKey     = "accessKeyID"
	SecretAccessKeyKey = "secretAccessKey"

	// UploadContainer and DownloadContainer are the containers' names.
	UploadContainer   = "upload"
	DownloadContainer = "download"

	// caVolume is the volume of the endpoint's CA certificate, mounted at caDir.
	caVolume = "s3-ca"
	caDir    = "/etc/platzwart/s3-ca"
	caFile   = "ca.crt"
)

// ImageFor is Image from a registry mirror (a workplace's spec.images.registry, which
// replaces docker.io), or Image itself for "".
func ImageFor(registry string) string {
	if registry == "" {
		return Image
	}
	return registry + "/" + strings.TrimPrefix(Image, "docker.io/")
}

// Object is where a dump is kept in S3-compatible storage.
type Object = v1alpha1.S3Object

// ObjectOf is the object of a dump file in the target: <prefix>/<file>.
func ObjectOf(t catalog.S3Backups, file string) Object {
	return Object{Endpoint: t.Endpoint, Bucket: t.Bucket, Key: path.Join(t.Prefix, file)}
}

// Remote is rclone's name of an object: the on-the-fly s3 remote, its bucket and key.
func Remote(o Object) string { return ":s3:" + o.Bucket + "/" + o.Key }

// Upload returns the container that copies dir/file (on the volume named volume) to
// ObjectOf(t, file), and the volumes it needs besides that one (the CA's).
func Upload(t catalog.S3Backups, volume, dir, file string) (corev1.Container, []corev1.Volume) {
	env := []corev1.EnvVar{
		{Name: "RCLONE_S3_PROVIDER", Value: "Other"},
		{Name: "RCLONE_S3_ENDPOINT", Value: t.Endpoint},
		{Name: "RCLONE_S3_FORCE_PATH_STYLE", Value: boolString(t.PathStyle == nil || *t.PathStyle)},
		// The bucket exists: no request to create it, and no right to.
		{Name: "RCLONE_S3_NO_CHECK_BUCKET", Value: "true"},
		{Name: "RCLONE_S3_ENV_AUTH", Value: "false"},
		secretEnv("RCLONE_S3_ACCESS_KEY_ID", t.CredentialsSecret, AccessKeyIDKey),
		secretEnv("RCLONE_S3_SECRET_ACCESS_KEY", t.CredentialsSecret, SecretAccessKeyKey),
	}
	if t.Region != "" {
		env = append(env, corev1.EnvVar{Name: "RCLONE_S3_REGION", Value: t.Region})
	}
	mounts := []corev1.VolumeMount{{Name: volume, MountPath: dir, ReadOnly: true}}
	var volumes []corev1.Volume
	if ca := t.CASecret; ca != nil {
		env = append(env, corev1.EnvVar{Name: "RCLONE_CA_CERT", Value: path.Join(caDir, caFile)})
		mounts = append(mounts, corev1.VolumeMount{Name: caVolume, MountPath: caDir, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: caVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: ca.Name, Items: []corev1.KeyToPath{{Key: ca.Key, Path: caFile}}}}})
	}
	c := corev1.Container{
		Name:  UploadContainer,
		Image: ImageFor(t.Registry),
		Command: []string{"rclone", "copyto", "--config=/dev/null", "--immutable", "--verbose",
			path.Join(dir, file), Remote(ObjectOf(t, file))},
		Env:             env,
		VolumeMounts:    mounts,
		SecurityContext: backup.ContainerSecurityContext(),
	}
	return c, volumes
}

// Download returns the container that copies o to dir/file (on the volume named
// volume), with the settings of an Upload container: its image, environment
// (endpoint, region, addressing, credentials as the same Secret references, CA)
// and CA mount. A restore thus reads the object the way its backup wrote it.
func Download(upload corev1.Container, o Object, volume, dir, file string) corev1.Container {
	mounts := []corev1.VolumeMount{{Name: volume, MountPath: dir}}
	for _, m := range upload.VolumeMounts {
		if m.Name == caVolume {
			mounts = append(mounts, m)
		}
	}
	return corev1.Container{
		Name:            DownloadContainer,
		Image:           upload.Image,
		ImagePullPolicy: upload.ImagePullPolicy,
		Command:         []string{"rclone", "copyto", "--config=/dev/null", "--verbose", Remote(o), path.Join(dir, file)},
		Env:             append([]corev1.EnvVar(nil), upload.Env...),
		VolumeMounts:    mounts,
		SecurityContext: backup.ContainerSecurityContext(),
	}
}

// Volumes returns the volumes of spec that a container built here mounts besides
// its dump volume (the CA's), to copy them into another pod with the container.
func Volumes(spec corev1.PodSpec) []corev1.Volume {
	var out []corev1.Volume
	for _, v := range spec.Volumes {
		if v.Name == caVolume {
			out = append(out, v)
		}
	}
	return out
}

// Secrets returns the names of the Secrets a container built here and its volumes
// in spec refer to: the credentials', then the CA's when it has one.
func Secrets(spec corev1.PodSpec, c corev1.Container) []string {
	var out []string
	for _, v := range c.Env {
		if v.Name == "RCLONE_S3_ACCESS_KEY_ID" && v.ValueFrom != nil && v.ValueFrom.SecretKeyRef != nil {
			out = append(out, v.ValueFrom.SecretKeyRef.Name)
		}
	}
	for _, v := range Volumes(spec) {
		if v.Secret != nil {
			out = append(out, v.Secret.SecretName)
		}
	}
	return out
}

func secretEnv(name, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
