{{/* Chart name (app.kubernetes.io/name). */}}
{{- define "postgresql.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name prefix: the release name (platzwart convention). */}}
{{- define "postgresql.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "postgresql.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Standard labels; call with (dict "ctx" $ "component" "server"). */}}
{{- define "postgresql.labels" -}}
{{ include "postgresql.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
helm.sh/chart: {{ include "postgresql.chart" .ctx }}
{{- end -}}

{{- define "postgresql.selectorLabels" -}}
app.kubernetes.io/name: {{ include "postgresql.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Image reference; global.imageRegistry overrides the registry. Call with (dict "ctx" $ "image" .Values.image). */}}
{{- define "postgresql.image" -}}
{{- $registry := .image.registry -}}
{{- with .ctx.Values.global -}}{{- if .imageRegistry -}}{{- $registry = .imageRegistry -}}{{- end -}}{{- end -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry .image.repository .image.tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository .image.tag -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret holding the superuser password (required). */}}
{{- define "postgresql.adminSecretName" -}}
{{- required "auth.existingSecret.name is required: the Secret with the superuser password (platzwart generates <release>-admin)" .Values.auth.existingSecret.name -}}
{{- end -}}

{{/* Validates the database list: reserved names and the superuser are refused. */}}
{{- define "postgresql.validateDatabases" -}}
{{- $seen := dict -}}
{{- range .Values.databases -}}
{{- if has .database (list "postgres" "template0" "template1") -}}
{{- fail (printf "databases: %q is a reserved database name" .database) -}}
{{- end -}}
{{- if eq .user $.Values.auth.username -}}
{{- fail (printf "databases: user %q is the superuser; every consumer needs its own role" .user) -}}
{{- end -}}
{{- if hasKey $seen .database -}}
{{- fail (printf "databases: %q is listed twice" .database) -}}
{{- end -}}
{{- $_ := set $seen .database true -}}
{{- end -}}
{{- end -}}
