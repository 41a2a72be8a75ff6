package backup

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// PostgresUID is the user and group of the official postgres images: the backup and
// restore Jobs run their scripts as it, and the dumps on a claim belong to it.
const PostgresUID = 999

// PodSecurityContext is the restricted pod security context of the backup and
// restore Jobs: the postgres user, its group owning mounted volumes, the runtime's
// default seccomp profile.
func PodSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](PostgresUID), RunAsGroup: ptr.To[int64](PostgresUID),
		FSGroup: ptr.To[int64](PostgresUID), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// ContainerSecurityContext is the restricted security context of every container of
// those Jobs: no privilege escalation, a read-only root file system, no capabilities.
func ContainerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}
