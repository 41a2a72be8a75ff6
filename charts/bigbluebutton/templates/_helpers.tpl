{{/* Resource name prefix: the release name. */}}
{{- define "bbb.fullname" -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "bbb.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels; call with (dict "ctx" $ "component" "greenlight"). */}}
{{- define "bbb.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "bbb.labels" -}}
{{ include "bbb.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
helm.sh/chart: {{ include "bbb.chart" .ctx }}
{{- end -}}

{{/* Image reference honouring global.imageRegistry. */}}
{{- define "bbb.image" -}}
{{- $registry := .Values.image.registry -}}
{{- if .Values.global.imageRegistry -}}
{{- $registry = .Values.global.imageRegistry -}}
{{- end -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry .Values.image.repository .Values.image.tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{/* secretKeyRef env entry; call with (dict "name" "ENV" "ref" .Values.x "what" "x"). */}}
{{- define "bbb.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "%s.name (Secret reference) is required" .what) .ref.name | quote }}
      key: {{ required (printf "%s.key (Secret reference) is required" .what) .ref.key | quote }}
{{- end -}}

{{/* The single BigBlueButton endpoint (validated). */}}
{{- define "bbb.server" -}}
{{- $servers := .Values.servers | default list -}}
{{- if eq (len $servers) 0 -}}
{{- fail "servers: declare the BigBlueButton server Greenlight connects to: servers: [{url: https://bbb.example.org/bigbluebutton/, secret: {name: <Secret>, key: <key>}}]. The BigBlueButton media servers are not deployed by this chart." -}}
{{- end -}}
{{- if gt (len $servers) 1 -}}
{{- fail "servers: Greenlight connects to exactly one BigBlueButton API endpoint (BIGBLUEBUTTON_ENDPOINT). For several BigBlueButton servers deploy Scalelite in front of them and declare only Scalelite's endpoint and shared secret." -}}
{{- end -}}
{{- $server := dict -}}
{{- if $servers -}}
{{- $server = index $servers 0 -}}
{{- end -}}
{{- if not (regexMatch "^https?://[^/]+" ($server.url | default "")) -}}
{{- fail "servers[0].url must be the BigBlueButton API base URL, e.g. https://bbb.example.org/bigbluebutton/" -}}
{{- end -}}
{{- toYaml $server -}}
{{- end -}}

{{- define "bbb.validate" -}}
{{- if not .Values.host -}}
{{- fail "host (public hostname of Greenlight, e.g. meet.example.org) is required" -}}
{{- end -}}
{{- $_ := include "bbb.server" . -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.s3.enabled) .Values.persistence.enabled (ne .Values.persistence.accessMode "ReadWriteMany") -}}
{{- fail "replicas > 1 needs shared file storage: set s3.enabled or persistence.accessMode ReadWriteMany" -}}
{{- end -}}
{{- end -}}

{{/* A server image; call with (dict "ctx" $ "image" .Values.server.images.web). */}}
{{- define "bbb.serverImage" -}}
{{- $registry := .ctx.Values.server.images.registry -}}
{{- if .ctx.Values.global.imageRegistry -}}
{{- $registry = .ctx.Values.global.imageRegistry -}}
{{- end -}}
{{- printf "%s/%s:%s" $registry .image.repository .image.tag -}}
{{- end -}}

{{/* The paths of the server under the meet host: bbb-docker's nginx locations
(mod/nginx/bbb/*.nginx, mod/nginx/bigbluebutton at v3.0.4); Greenlight keeps /. */}}
{{- define "bbb.serverPaths" -}}
- /bigbluebutton
- /html5client
- /bbb-webrtc-sfu
- /graphql
- /api/rest
- /pad
- /notes
- /learning-analytics-dashboard
- /playback
- /presentation
- /default.pdf
{{- end -}}

{{/* Environment shared by the server's containers: DOMAIN (the meet host the
server answers under) and the address media is announced at. */}}
{{- define "bbb.serverEnv" -}}
- name: DOMAIN
  value: {{ .Values.host | quote }}
- name: HOST_IP
  valueFrom:
    fieldRef:
      fieldPath: status.hostIP
{{- if .Values.server.announcedIPv4 }}
- name: EXTERNAL_IPv4
  value: {{ .Values.server.announcedIPv4 | quote }}
{{- else }}
- name: EXTERNAL_IPv4
  value: $(HOST_IP)
{{- end }}
{{- end -}}

{{/* securityContext of a server container that runs as a fixed non-root user. */}}
{{- define "bbb.restrictedContainer" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* securityContext of a server container whose bbb-docker image starts as root
(README "Pod Security"): its entrypoint chowns, templates files under /etc and
drops to its user with gosu or the program's own -u flag; call with (dict "add"
(list "CHOWN" ...)), the capabilities that needs. */}}
{{- define "bbb.rootContainer" -}}
runAsNonRoot: false
runAsUser: 0
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
  add: {{ toJson .add }}
{{- end -}}

{{/* securityContext of a server container that runs as its image's non-root
user, given by number (its group from the image's /etc/passwd unless gid is
given); its entrypoint writes configuration into the image. */}}
{{- define "bbb.nonRootContainer" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
{{- if hasKey . "gid" }}
runAsGroup: {{ .gid }}
{{- end }}
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
{{- end -}}
