package conformance_test

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/platzwart/platzwart/reconciler/plan"
)

// restrictedExceptions are the containers that cannot run under the "restricted"
// Pod Security Standard, by component and container, with the upstream reason (each
// is also listed in its chart's README). Any other container that breaks a rule
// fails TestConformance.
var restrictedExceptions = map[string]string{
	"collabora/coolwsd":            "coolforkit-caps needs CHOWN, FOWNER and SYS_CHROOT through file capabilities to build the document jails (allowPrivilegeEscalation must stay true for file capabilities to apply)",
	"bigbluebutton/greenlight":     "the Greenlight v3 image has no non-root user and its start script compiles assets into the root-owned application directory",
	"bigbluebutton/(pod)":          "the BigBlueButton server pod uses the node's network: FreeSWITCH and bbb-webrtc-sfu (mediasoup) send and receive media on the node's address and a UDP port range (charts/bigbluebutton README, \"Pod Security\")",
	"bigbluebutton/freeswitch":     "bbb-docker's FreeSWITCH image starts as root: it chowns its directories and freeswitch -u/-g drops to its user; it needs CHOWN, DAC_OVERRIDE, FOWNER, SETUID, SETGID and the scheduling capabilities bbb-docker adds (SYS_NICE, IPC_LOCK, SYS_RESOURCE)",
	"bigbluebutton/bbb-web":        "bbb-docker's bbb-web image starts as root: its entrypoint chowns /var/bigbluebutton and starts java through gosu (CHOWN, DAC_OVERRIDE, FOWNER, SETUID, SETGID)",
	"bigbluebutton/graphql-server": "bbb-docker's graphql-server image (hasura/graphql-engine) starts as root and runs the engine through gosu nobody (SETUID, SETGID)",
	"eurooffice/documentserver":    "the Euro-Office standalone image has no non-root mode: its entrypoint runs as root, rewrites local.json and the nginx configuration under /etc, and starts nginx (port 80), RabbitMQ, Redis and supervisord, which switch to their own users (build/scripts/standalone/entrypoint.sh)",
}

// checkRestricted checks every container of every workload against the rules of the
// "restricted" Pod Security Standard (Kubernetes v1.30+): non-root, no privilege
// escalation, capabilities dropped (only NET_BIND_SERVICE may be added),
// RuntimeDefault or Localhost seccomp, no host namespaces, ports or paths, and only
// the volume types the standard allows.
func checkRestricted(t reporter, p *plan.Plan, w workplace, used map[string]bool) {
	t.Helper()
	for _, r := range p.Releases {
		for _, pd := range w[r.Name].pods {
			for _, why := range restrictedViolations(pd) {
				key := r.Component + "/" + why.container
				if _, ok := restrictedExceptions[key]; ok {
					used[key] = true
					continue
				}
				t.Errorf("%s: %s container %s breaks the restricted Pod Security Standard: %s", r.Name, pd.workload, why.container, why.rule)
			}
		}
	}
}

type violation struct{ container, rule string }

func restrictedViolations(pd pod) []violation {
	var out []violation
	spec := pd.spec
	podSC := spec.SecurityContext
	if podSC == nil {
		podSC = &corev1.PodSecurityContext{}
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		out = append(out, violation{"(pod)", "host namespaces"})
	}
	for _, v := range spec.Volumes {
		vs := v.VolumeSource
		if vs.ConfigMap == nil && vs.EmptyDir == nil && vs.Secret == nil && vs.PersistentVolumeClaim == nil &&
			vs.Projected == nil && vs.DownwardAPI == nil && vs.CSI == nil && vs.Ephemeral == nil {
			out = append(out, violation{"(pod)", "volume " + v.Name + " of a type the standard does not allow"})
		}
	}
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range all {
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil {
			nonRoot = podSC.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			out = append(out, violation{c.Name, "runAsNonRoot is not true"})
		}
		uid := sc.RunAsUser
		if uid == nil {
			uid = podSC.RunAsUser
		}
		if uid != nil && *uid == 0 {
			out = append(out, violation{c.Name, "runAsUser 0"})
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			out = append(out, violation{c.Name, "allowPrivilegeEscalation is not false"})
		}
		if sc.Privileged != nil && *sc.Privileged {
			out = append(out, violation{c.Name, "privileged"})
		}
		dropsAll := false
		if sc.Capabilities != nil {
			for _, d := range sc.Capabilities.Drop {
				if d == "ALL" {
					dropsAll = true
				}
			}
			for _, a := range sc.Capabilities.Add {
				if a != "NET_BIND_SERVICE" {
					out = append(out, violation{c.Name, "adds capability " + string(a)})
				}
			}
		}
		if !dropsAll {
			out = append(out, violation{c.Name, "capabilities do not drop ALL"})
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = podSC.SeccompProfile
		}
		if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
			out = append(out, violation{c.Name, "seccompProfile is not RuntimeDefault or Localhost"})
		}
		for _, port := range c.Ports {
			if port.HostPort != 0 {
				out = append(out, violation{c.Name, fmt.Sprintf("hostPort %d", port.HostPort)})
			}
		}
	}
	return out
}
