{{/* Resource name prefix: the release name. */}}
{{- define "meet.fullname" -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "meet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels; call with (dict "ctx" $ "component" "backend"). */}}
{{- define "meet.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Standard labels; call with (dict "ctx" $ "component" "backend"). */}}
{{- define "meet.labels" -}}
{{ include "meet.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
helm.sh/chart: {{ include "meet.chart" .ctx }}
{{- end -}}

{{/* Image reference; call with (dict "image" .Values.images.backend "global" .Values.global). */}}
{{- define "meet.image" -}}
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

{{/* secretKeyRef env entry; call with (dict "name" "ENV" "ref" .Values.x.y "what" "x.y"). */}}
{{- define "meet.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "%s.name (Secret reference) is required" .what) .ref.name | quote }}
      key: {{ required (printf "%s.key (Secret reference) is required" .what) .ref.key | quote }}
{{- end -}}

{{/* Container security context shared by every container of the chart. */}}
{{- define "meet.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Pod security context; call with (dict "uid" 1001 "gid" 127).
The backend image runs as the workflow's DOCKER_USER 1001:127
(suitenumerique/meet .github/workflows/docker-hub.yml); the frontend is
nginx-unprivileged (uid/gid 101); LiveKit's image has no user (alpine, root):
it runs as nobody.
*/}}
{{- define "meet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .gid }}
fsGroup: {{ .gid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* OIDC endpoints: explicit values, else Keycloak's paths under the realm issuer. */}}
{{- define "meet.oidcEndpoint" -}}
{{- $v := .ctx.Values.oidc -}}
{{- $explicit := index $v.endpoints .name -}}
{{- if $explicit -}}
{{- $explicit -}}
{{- else -}}
{{- $issuer := trimSuffix "/" (required "oidc.issuerURL is required" $v.issuerURL) -}}
{{- if not (regexMatch "^https?://[^/]+(/.*)?/realms/[^/]+$" $issuer) -}}
{{- fail (printf "oidc.issuerURL %q is not a Keycloak realm URL (https://<host>[/<path>]/realms/<realm>): set oidc.endpoints.%s (mozilla-django-oidc reads no discovery document)" $issuer .name) -}}
{{- end -}}
{{- $paths := dict "authorization" "auth" "token" "token" "userinfo" "userinfo" "jwks" "certs" "endSession" "logout" -}}
{{- printf "%s/protocol/openid-connect/%s" $issuer (index $paths .name) -}}
{{- end -}}
{{- end -}}

{{/* Validations shared by several templates. */}}
{{- define "meet.validate" -}}
{{- if not .Values.host -}}
{{- fail "host (public hostname of Meet, e.g. meet.example.org) is required" -}}
{{- end -}}
{{- if not .Values.livekitHost -}}
{{- fail "livekitHost (public hostname of LiveKit's signalling, e.g. livekit.example.org) is required" -}}
{{- end -}}
{{- if not .Values.livekit.advertiseAddress -}}
{{- fail "livekit.advertiseAddress (public IP clients send media to: the node IP for a NodePort, the load balancer IP for a LoadBalancer) must be set, otherwise LiveKit advertises its pod IP and media cannot flow" -}}
{{- end -}}
{{- if eq (int .Values.livekit.udpPort) (int .Values.livekit.tcpPort) -}}
{{- fail "livekit.udpPort and livekit.tcpPort must differ" -}}
{{- end -}}
{{- if eq .Values.livekit.service.type "NodePort" -}}
{{- range $what, $port := dict "livekit.udpPort" .Values.livekit.udpPort "livekit.tcpPort" .Values.livekit.tcpPort -}}
{{- if or (lt (int $port) 30000) (gt (int $port) 32767) -}}
{{- fail (printf "%s must lie in the NodePort range 30000-32767 when livekit.service.type is NodePort (container, Service and advertised port are the same number)" $what) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Environment of the backend and its migration Job: Django settings from
suitenumerique/meet@v1.27.0 src/backend/meet/settings.py (README lists each).
*/}}
{{- define "meet.backendEnv" -}}
{{- $v := .Values -}}
- name: DJANGO_CONFIGURATION
  value: Production
- name: DJANGO_SETTINGS_MODULE
  value: meet.settings
{{ include "meet.secretEnv" (dict "name" "DJANGO_SECRET_KEY" "ref" $v.secretKey "what" "secretKey") }}
- name: DJANGO_ALLOWED_HOSTS
  value: {{ $v.host | quote }}
- name: DJANGO_CSRF_TRUSTED_ORIGINS
  value: {{ printf "https://%s" $v.host | quote }}
- name: DB_HOST
  value: {{ required "database.host is required" $v.database.host | quote }}
- name: DB_PORT
  value: {{ $v.database.port | quote }}
- name: DB_NAME
  value: {{ $v.database.name | quote }}
- name: DB_USER
  value: {{ $v.database.user | quote }}
{{ include "meet.secretEnv" (dict "name" "DB_PASSWORD" "ref" $v.database.passwordSecret "what" "database.passwordSecret") }}
{{- with $v.database.sslMode }}
- name: PGSSLMODE
  value: {{ . | quote }}
{{- end }}
{{- if $v.redis.passwordSecret.name }}
{{ include "meet.secretEnv" (dict "name" "REDIS_PASSWORD" "ref" $v.redis.passwordSecret "what" "redis.passwordSecret") }}
- name: REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:%v/%v" (required "redis.host is required" $v.redis.host) $v.redis.port $v.redis.db | quote }}
{{- else }}
- name: REDIS_URL
  value: {{ printf "redis://%s:%v/%v" (required "redis.host is required" $v.redis.host) $v.redis.port $v.redis.db | quote }}
{{- end }}
# Single sign-on (mozilla-django-oidc through django-lasuite).
- name: OIDC_OP_AUTHORIZATION_ENDPOINT
  value: {{ include "meet.oidcEndpoint" (dict "ctx" $ "name" "authorization") | quote }}
- name: OIDC_OP_TOKEN_ENDPOINT
  value: {{ include "meet.oidcEndpoint" (dict "ctx" $ "name" "token") | quote }}
- name: OIDC_OP_USER_ENDPOINT
  value: {{ include "meet.oidcEndpoint" (dict "ctx" $ "name" "userinfo") | quote }}
- name: OIDC_OP_JWKS_ENDPOINT
  value: {{ include "meet.oidcEndpoint" (dict "ctx" $ "name" "jwks") | quote }}
- name: OIDC_OP_LOGOUT_ENDPOINT
  value: {{ include "meet.oidcEndpoint" (dict "ctx" $ "name" "endSession") | quote }}
- name: OIDC_RP_CLIENT_ID
  value: {{ required "oidc.clientID is required" $v.oidc.clientID | quote }}
{{- include "meet.secretEnv" (dict "name" "OIDC_RP_CLIENT_SECRET" "ref" $v.oidc.clientSecret "what" "oidc.clientSecret") | nindent 0 }}
- name: OIDC_RP_SIGN_ALGO
  value: RS256
- name: OIDC_RP_SCOPES
  value: {{ $v.oidc.scopes | quote }}
- name: OIDC_REDIRECT_ALLOWED_HOSTS
  value: {{ printf "https://%s" $v.host | quote }}
- name: LOGIN_REDIRECT_URL
  value: {{ printf "https://%s" $v.host | quote }}
- name: LOGIN_REDIRECT_URL_FAILURE
  value: {{ printf "https://%s" $v.host | quote }}
- name: LOGOUT_REDIRECT_URL
  value: {{ printf "https://%s" $v.host | quote }}
# LiveKit: the URL browsers connect to (the backend hands it out with each
# token) and the server API the backend calls.
- name: LIVEKIT_API_URL
  value: {{ printf "https://%s" $v.livekitHost | quote }}
{{- include "meet.secretEnv" (dict "name" "LIVEKIT_API_KEY" "ref" $v.livekit.apiKey "what" "livekit.apiKey") | nindent 0 }}
{{- include "meet.secretEnv" (dict "name" "LIVEKIT_API_SECRET" "ref" $v.livekit.apiSecret "what" "livekit.apiSecret") | nindent 0 }}
{{- with $v.backend.extraEnv }}
{{- range $k, $val := . }}
- name: {{ $k }}
  value: {{ $val | toString | quote }}
{{- end }}
{{- end }}
{{- end -}}
