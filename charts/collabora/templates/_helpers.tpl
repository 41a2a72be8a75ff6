{{/*
Resource name prefix: the release name (platzwart names releases <workplace>-<component>).
*/}}
{{- define "collabora.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Standard labels. Call with (dict "root" $ "component" "coolwsd").
*/}}
{{- define "collabora.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "collabora.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: platzwart
{{- end -}}

{{- define "collabora.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Image reference. Call with (dict "image" .Values.x.image "root" $).
global.imageRegistry, when set, replaces every image's registry.
*/}}
{{- define "collabora.image" -}}
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
{{- define "collabora.ingressTLS" -}}
{{- $tls := .root.Values.routing.tls | default dict -}}
{{- $secret := "" -}}
{{- if $tls.secretName -}}
{{- $secret = $tls.secretName -}}
{{- else if or $tls.clusterIssuer $tls.issuer -}}
{{- $secret = printf "%s-tls" (include "collabora.fullname" .root) -}}
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
aliasgroup1 for the image's start script: every allowed WOPI host as
scheme://host:port, the host regex-escaped (Collabora matches them as regular
expressions). The first entry is the group's host, the rest its aliases.
With no files component, a host that can never match is allowed (deny all).
*/}}
{{- define "collabora.aliasgroup" -}}
{{- $entries := list -}}
{{- range .Values.wopiHosts -}}
{{- $u := urlParse . -}}
{{- $scheme := $u.scheme | default "https" -}}
{{- $hostport := splitList ":" $u.host -}}
{{- $host := first $hostport -}}
{{- $port := ternary (last $hostport) (ternary "443" "80" (eq $scheme "https")) (gt (len $hostport) 1) -}}
{{- $entries = append $entries (printf "%s://%s:%s" $scheme (regexQuoteMeta $host) $port) -}}
{{- end -}}
{{- if not $entries }}{{ $entries = list "https://wopi-host-not-configured\\.invalid:443" }}{{ end -}}
{{- join "," $entries -}}
{{- end -}}

{{- define "collabora.extraParams" -}}
{{- $p := list
  "--o:ssl.enable=false"
  "--o:ssl.termination=true"
  "--o:mount_jail_tree=false"
  "--o:mount_namespaces=false"
  "--o:welcome.enable=false"
  "--o:fetch_update_check=0"
  "--o:allow_update_popup=false"
  "--o:logging.level=warning" -}}
{{- with (.Values.routing.tls | default dict).caSecret }}{{ if .name }}{{ $p = append $p (printf "--o:storage.ssl.ca_file_path=%s" (include "collabora.caFile" $)) }}{{ end }}{{ end -}}
{{- $p = concat $p .Values.extraParams -}}
{{- join " " $p -}}
{{- end -}}

{{/*
Where the workplace's CA (routing.tls.caSecret) is mounted.
*/}}
{{- define "collabora.caFile" -}}
/etc/platzwart/ca/ca.crt
{{- end -}}
