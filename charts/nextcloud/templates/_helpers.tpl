{{/*
Resource name prefix: the release name (platzwart names releases <workplace>-<component>).
*/}}
{{- define "nextcloud.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Standard labels. Call with (dict "root" $ "component" "app").
*/}}
{{- define "nextcloud.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "nextcloud.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: platzwart
{{- end -}}

{{- define "nextcloud.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Image reference. Call with (dict "image" .Values.x.image "root" $).
global.imageRegistry, when set, replaces every image's registry.
*/}}
{{- define "nextcloud.image" -}}
{{- $registry := .image.registry -}}
{{- with .root.Values.global.imageRegistry }}{{ $registry = . }}{{ end -}}
{{- if $registry -}}
{{ printf "%s/%s:%s" $registry .image.repository .image.tag }}
{{- else -}}
{{ printf "%s:%s" .image.repository .image.tag }}
{{- end -}}
{{- end -}}

{{/*
Container security context shared by every container of this chart.
*/}}
{{- define "nextcloud.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
TLS block of the Ingress: one entry covering every host of the release.
*/}}
{{- define "nextcloud.ingressTLS" -}}
{{- $tls := .root.Values.routing.tls | default dict -}}
{{- $secret := "" -}}
{{- if $tls.secretName -}}
{{- $secret = $tls.secretName -}}
{{- else if or $tls.clusterIssuer $tls.issuer -}}
{{- $secret = printf "%s-tls" (include "nextcloud.fullname" .root) -}}
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


{{- define "nextcloud.pvcName" -}}
{{- .Values.persistence.existingClaim | default (printf "%s-data" (include "nextcloud.fullname" .)) -}}
{{- end -}}

{{/*
Environment shared by the web container, the cron sidecar and the occ hook
Job. The *.config.php files shipped by the image read these at runtime, so
every PHP process must see the same values. Secrets only via secretKeyRef.
*/}}
{{- define "nextcloud.env" -}}
{{- $v := .Values -}}
- name: POSTGRES_HOST
  value: {{ printf "%s:%v" (required "database.host is required" $v.database.host) $v.database.port | quote }}
- name: POSTGRES_DB
  value: {{ $v.database.name | quote }}
- name: POSTGRES_USER
  value: {{ $v.database.user | quote }}
- name: POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "database.passwordSecret.name is required" $v.database.passwordSecret.name }}
      key: {{ $v.database.passwordSecret.key }}
# NC_<key> overrides config.php at runtime: the password always comes from the
# Secret, also after a rotation.
- name: NC_dbpassword
  valueFrom:
    secretKeyRef:
      name: {{ $v.database.passwordSecret.name }}
      key: {{ $v.database.passwordSecret.key }}
- name: REDIS_HOST
  value: {{ required "redis.host is required" $v.redis.host | quote }}
- name: REDIS_HOST_PORT
  value: {{ $v.redis.port | quote }}
{{- if $v.redis.passwordSecret.name }}
- name: REDIS_HOST_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.redis.passwordSecret.name }}
      key: {{ $v.redis.passwordSecret.key }}
{{- end }}
- name: NEXTCLOUD_TRUSTED_DOMAINS
  value: {{ required "host is required" $v.host | quote }}
- name: OVERWRITEHOST
  value: {{ $v.host | quote }}
- name: OVERWRITEPROTOCOL
  value: https
- name: OVERWRITECLIURL
  value: {{ printf "https://%s" $v.host | quote }}
- name: TRUSTED_PROXIES
  value: {{ join " " $v.trustedProxies | quote }}
- name: PHP_MEMORY_LIMIT
  value: {{ $v.php.memoryLimit | quote }}
- name: PHP_UPLOAD_LIMIT
  value: {{ $v.php.uploadLimit | quote }}
{{- end -}}

{{- define "nextcloud.apachePorts" -}}
# Non-root Apache cannot bind port 80.
Listen 8080
{{- end -}}

{{- define "nextcloud.apacheSite" -}}
<VirtualHost *:8080>
    ServerName {{ .Values.host }}
    DocumentRoot /var/www/html
    ErrorLog ${APACHE_LOG_DIR}/error.log
    CustomLog ${APACHE_LOG_DIR}/access.log combined
</VirtualHost>
{{- end -}}

{{/*
File name of the workplace's CA in Nextcloud's certificate store
(occ security:certificates:import names it after the file).
*/}}
{{- define "nextcloud.caFileName" -}}
platzwart-workplace-ca.crt
{{- end -}}
