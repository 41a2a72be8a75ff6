{{/* Resource name prefix: the release name. */}}
{{- define "jitsi.fullname" -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "jitsi.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels; call with (dict "ctx" $ "component" "web"). */}}
{{- define "jitsi.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Standard labels; call with (dict "ctx" $ "component" "web"). */}}
{{- define "jitsi.labels" -}}
{{ include "jitsi.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
helm.sh/chart: {{ include "jitsi.chart" .ctx }}
{{- end -}}

{{/* Image reference; call with (dict "image" .Values.images.web "global" .Values.global). */}}
{{- define "jitsi.image" -}}
{{- $registry := .image.registry -}}
{{- if and .global .global.imageRegistry -}}
{{- $registry = .global.imageRegistry -}}
{{- end -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry .image.repository .image.tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository .image.tag -}}
{{- end -}}
{{- end -}}

{{/* Service name of prosody (XMPP_SERVER). */}}
{{- define "jitsi.prosodyHost" -}}
{{- printf "%s-prosody" (include "jitsi.fullname" .) -}}
{{- end -}}

{{/* secretKeyRef env entry; call with (dict "name" "ENV" "ref" .Values.x.y "what" "x.y"). */}}
{{- define "jitsi.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "%s.name (Secret reference) is required" .what) .ref.name | quote }}
      key: {{ required (printf "%s.key (Secret reference) is required" .what) .ref.key | quote }}
{{- end -}}

{{/* Extra env entries from a name: value map (sorted, deterministic). */}}
{{- define "jitsi.extraEnv" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/* Pod-level security context of the s6-overlay based Jitsi images (user s6, uid/gid 1000). */}}
{{- define "jitsi.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container security context shared by every container of the chart. */}}
{{- define "jitsi.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Environment every s6-overlay v3 Jitsi container needs on Kubernetes: the image
already sets S6_READ_ONLY_ROOT=1; /run is an emptyDir that belongs to root
with mode 0777, which s6-overlay only accepts with this explicit switch.
*/}}
{{- define "jitsi.s6Env" -}}
- name: S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES
  value: "1"
- name: TZ
  value: {{ .Values.timezone | quote }}
{{- end -}}

{{/* Writable scratch volumes of the s6-overlay Jitsi containers. */}}
{{- define "jitsi.s6Volumes" -}}
- name: run
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end -}}

{{- define "jitsi.s6VolumeMounts" -}}
- name: run
  mountPath: /run
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Keycloak origin (scheme://host[:port]) and realm from oidc.issuerURL. */}}
{{- define "jitsi.oidcMatch" -}}
{{- $issuer := required "oidc.issuerURL is required when auth.enabled (Keycloak realm URL https://<host>/realms/<realm>)" .Values.oidc.issuerURL -}}
{{- if not (regexMatch "^https?://[^/]+(/.*)?/realms/[^/]+/?$" $issuer) -}}
{{- fail (printf "oidc.issuerURL %q is not a Keycloak realm URL (https://<host>[/<path>]/realms/<realm>): the jitsi-keycloak-adapter builds Keycloak endpoint paths itself" $issuer) -}}
{{- end -}}
{{- end -}}

{{- define "jitsi.oidcOrigin" -}}
{{- include "jitsi.oidcMatch" . -}}
{{- regexReplaceAll "/realms/[^/]+/?$" .Values.oidc.issuerURL "" -}}
{{- end -}}

{{- define "jitsi.oidcRealm" -}}
{{- include "jitsi.oidcMatch" . -}}
{{- regexReplaceAll "^.*/realms/([^/]+)/?$" .Values.oidc.issuerURL "${1}" -}}
{{- end -}}

{{/* Validations shared by several templates. */}}
{{- define "jitsi.validate" -}}
{{- if not .Values.host -}}
{{- fail "host (public hostname of Jitsi Meet, e.g. meet.example.org) is required" -}}
{{- end -}}
{{- if and (not .Values.jvb.advertiseAddress) (not .Values.jvb.stunServers) -}}
{{- fail "jvb.advertiseAddress (public IP clients send UDP media to: the node IP for a NodePort, the load balancer IP for a LoadBalancer) or jvb.stunServers must be set, otherwise the bridge only advertises its pod IP and media cannot flow" -}}
{{- end -}}
{{- if and (eq .Values.jvb.service.type "NodePort") (or (lt (int .Values.jvb.port) 30000) (gt (int .Values.jvb.port) 32767)) -}}
{{- fail "jvb.port must lie in the NodePort range 30000-32767 when jvb.service.type is NodePort (the container, Service and advertised port are the same number)" -}}
{{- end -}}
{{- end -}}

{{/* Public URL of the web frontend. */}}
{{- define "jitsi.publicURL" -}}
{{- printf "https://%s" .Values.host -}}
{{- end -}}
