{{/*
Resource name prefix: the release name (platzwart names releases <workplace>-<component>).
*/}}
{{- define "opencloud.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Standard labels. Call with (dict "root" $ "component" "server").
*/}}
{{- define "opencloud.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "opencloud.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: platzwart
{{- end -}}

{{- define "opencloud.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Image reference; global.imageRegistry, when set, replaces the registry.
*/}}
{{- define "opencloud.image" -}}
{{- $registry := .Values.image.registry -}}
{{- with .Values.global.imageRegistry }}{{ $registry = . }}{{ end -}}
{{- if $registry -}}
{{ printf "%s/%s:%s" $registry .Values.image.repository .Values.image.tag }}
{{- else -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/*
Container security context shared by every container of this chart.
*/}}
{{- define "opencloud.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
TLS block of the Ingress.
*/}}
{{- define "opencloud.ingressTLS" -}}
{{- $tls := .Values.routing.tls | default dict -}}
{{- $secret := "" -}}
{{- if $tls.secretName -}}
{{- $secret = $tls.secretName -}}
{{- else if or $tls.clusterIssuer $tls.issuer -}}
{{- $secret = printf "%s-tls" (include "opencloud.fullname" .) -}}
{{- end -}}
{{- if $secret -}}
tls:
  - hosts:
      - {{ .Values.host | quote }}
    secretName: {{ $secret }}
{{- end }}
{{- end -}}

{{- define "opencloud.pvcName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "opencloud.fullname" .)) -}}
{{- end -}}

{{/*
The collaboration service's connector for the office component's kind: the
product (COLLABORATION_APP_PRODUCT: Collabora, OnlyOffice, Microsoft365 or
MicrosoftOfficeOnline, services/collaboration/pkg/config/app.go; the connector
is chosen by it in pkg/connector/fileconnector.go) and the app's name shown to
people (COLLABORATION_APP_NAME, one word). Euro-Office Docs is a fork of
ONLYOFFICE Docs and keeps its WOPI flavour (components/eurooffice). An office
kind without a connector fails the rendering instead of starting a wrong one.
Call with (dict "root" $ "field" "product"|"name").
*/}}
{{- define "opencloud.officeApp" -}}
{{- $apps := dict
      "collabora" (dict "product" "Collabora" "name" "Collabora")
      "onlyoffice" (dict "product" "OnlyOffice" "name" "OnlyOffice")
      "eurooffice" (dict "product" "OnlyOffice" "name" "EuroOffice") -}}
{{- $kind := .root.Values.office.kind | lower -}}
{{- if not (hasKey $apps $kind) -}}
{{- fail (printf "office.kind %q: OpenCloud's collaboration service has a WOPI connector for collabora, onlyoffice and eurooffice only" .root.Values.office.kind) -}}
{{- end -}}
{{- get (get $apps $kind) .field -}}
{{- end -}}

{{/*
Origin (scheme://host[:port]) of a URL, for the Content-Security-Policy.
*/}}
{{- define "opencloud.origin" -}}
{{- $u := urlParse . -}}
{{- printf "%s://%s" $u.scheme $u.host -}}
{{- end -}}

{{/*
Paths inside the container. The image's home and working directory
/var/lib/opencloud holds config (generated once by `opencloud init`) and data.
*/}}
{{- define "opencloud.dataPath" -}}/var/lib/opencloud{{- end -}}
{{- define "opencloud.configPath" -}}/var/lib/opencloud/config{{- end -}}
{{- define "opencloud.bundle" -}}/etc/platzwart/bundle/ca-bundle.crt{{- end -}}

{{/*
Environment shared by every opencloud process of the pod: where the config and
data live, and the public URL.
*/}}
{{- define "opencloud.commonEnv" -}}
- name: OC_URL
  value: {{ printf "https://%s" (required "host is required" .Values.host) | quote }}
- name: OC_BASE_DATA_PATH
  value: {{ include "opencloud.dataPath" . | quote }}
- name: OC_CONFIG_DIR
  value: {{ include "opencloud.configPath" . | quote }}
# certificates are verified (init writes no insecure settings either)
- name: OC_INSECURE
  value: "false"
{{- end -}}

{{/*
SSL_CERT_FILE of the containers that call other hosts over HTTPS (a bundle of the
image's CAs and the workplace CA, built by the ca-bundle init container).
*/}}
{{- define "opencloud.trustEnv" -}}
{{- if (.Values.routing.tls.caSecret | default dict).name }}
- name: SSL_CERT_FILE
  value: {{ include "opencloud.bundle" . | quote }}
{{- end }}
{{- end -}}
