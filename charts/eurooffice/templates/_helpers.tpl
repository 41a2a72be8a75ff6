{{/*
Resource name prefix: the release name (platzwart names releases <workplace>-<component>).
*/}}
{{- define "eurooffice.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Standard labels. Call with (dict "root" $ "component" "documentserver").
*/}}
{{- define "eurooffice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "eurooffice.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: platzwart
{{- end -}}

{{- define "eurooffice.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Image reference. Call with (dict "image" .Values.x.image "root" $).
global.imageRegistry, when set, replaces every image's registry.
*/}}
{{- define "eurooffice.image" -}}
{{- $registry := .image.registry -}}
{{- with .root.Values.global.imageRegistry }}{{ $registry = . }}{{ end -}}
{{- if $registry -}}
{{ printf "%s/%s:%s" $registry .image.repository .image.tag }}
{{- else -}}
{{ printf "%s:%s" .image.repository .image.tag }}
{{- end -}}
{{- end -}}

{{/*
TLS block of the Ingress: one entry covering every host of the release.
*/}}
{{- define "eurooffice.ingressTLS" -}}
{{- $tls := .root.Values.routing.tls | default dict -}}
{{- $secret := "" -}}
{{- if $tls.secretName -}}
{{- $secret = $tls.secretName -}}
{{- else if or $tls.clusterIssuer $tls.issuer -}}
{{- $secret = printf "%s-tls" (include "eurooffice.fullname" .root) -}}
{{- end -}}
{{- if $secret -}}
tls:
  - hosts:
      {{- range .hosts }}
      - {{ . | quote }}
      {{- end }}
    secretName: {{ $secret }}
{{- end }}
{{- end -}}

{{/*
Where the workplace's CA (routing.tls.caSecret) is mounted.
*/}}
{{- define "eurooffice.caFile" -}}
/etc/platzwart/ca/ca.crt
{{- end -}}

{{/*
The image's data directory (DATA_DIR of the entrypoint): WOPI keys and
.private/ (generated secure-link secret) live here.
*/}}
{{- define "eurooffice.dataDir" -}}
/var/www/euro-office/Data
{{- end -}}
