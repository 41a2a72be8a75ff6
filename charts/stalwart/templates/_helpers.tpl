{{/*
Resource name prefix: the release name (platzwart names releases <workplace>-<component>).
*/}}
{{- define "stalwart.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Standard labels. Call with (dict "root" $ "component" "server").
*/}}
{{- define "stalwart.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "stalwart.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: platzwart
{{- end -}}

{{- define "stalwart.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Image reference. Call with (dict "image" .Values.x.image "root" $).
*/}}
{{- define "stalwart.image" -}}
{{- $registry := .image.registry -}}
{{- with .root.Values.global.imageRegistry }}{{ $registry = . }}{{ end -}}
{{- if $registry -}}
{{ printf "%s/%s:%s" $registry .image.repository .image.tag }}
{{- else -}}
{{ printf "%s:%s" .image.repository .image.tag }}
{{- end -}}
{{- end -}}

{{/*
The Secret with the certificate of the public hosts, which the mail protocols
present too: the workplace's wildcard Secret (TLS modes SelfSigned and Secret) or
the Secret cert-manager issues for this release's Ingress, which lists both hosts.
"" in routing mode gateway without a secretName and in TLS mode None: Stalwart
then presents its own self-signed certificate (README.md, "TLS").
*/}}
{{- define "stalwart.tlsSecret" -}}
{{- $tls := .Values.routing.tls | default dict -}}
{{- if $tls.secretName -}}
{{- $tls.secretName -}}
{{- else if and (eq .Values.routing.mode "ingress") (or $tls.clusterIssuer $tls.issuer) -}}
{{- printf "%s-tls" (include "stalwart.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
Ports of Stalwart's listeners. 25, 465, 993 and 8080 are the listeners Stalwart
creates on an empty data store (crates/common/src/manager/defaults.rs at v0.16.18);
2525 is the relay listener the provisioning Job adds.
*/}}
{{- define "stalwart.relayPort" -}}2525{{- end -}}

{{/* Path of the CA bundle (image roots + workplace CA) an init container builds. */}}
{{- define "stalwart.caBundle" -}}/etc/platzwart/ca-bundle/ca-certificates.crt{{- end -}}
{{- define "stalwart.caFile" -}}/etc/platzwart/ca/ca.crt{{- end -}}

{{/* Container security context of the containers without extra capabilities. */}}
{{- define "stalwart.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
