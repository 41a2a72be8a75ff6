{{/* Chart name (app.kubernetes.io/name). */}}
{{- define "platzwart.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name prefix: the release name (platzwart convention). */}}
{{- define "platzwart.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of cluster-scoped names (ClusterRoles, ClusterRoleBindings) and of names in
other namespaces (RoleBindings in workplace namespaces): release name and namespace,
so that several installs (scale-out with workplaceSelector) never collide.
*/}}
{{- define "platzwart.clusterName" -}}
{{- printf "%s-%s" .Release.Name .Release.Namespace -}}
{{- end -}}

{{- define "platzwart.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Standard labels; call with (dict "ctx" $ "component" "controller"). */}}
{{- define "platzwart.labels" -}}
{{ include "platzwart.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
helm.sh/chart: {{ include "platzwart.chart" .ctx }}
{{- end -}}

{{- define "platzwart.selectorLabels" -}}
app.kubernetes.io/name: {{ include "platzwart.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Name of the controller's ServiceAccount. */}}
{{- define "platzwart.serviceAccountName" -}}
{{- default (include "platzwart.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Image reference; global.imageRegistry overrides the registry, the tag defaults to the chart's appVersion. */}}
{{- define "platzwart.image" -}}
{{- $registry := .Values.image.registry -}}
{{- with .Values.global -}}{{- if .imageRegistry -}}{{- $registry = .imageRegistry -}}{{- end -}}{{- end -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry .Values.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
The Git credentials Secret as a list [namespace, name]: git.secret is "name" (in the
release namespace) or "namespace/name"; empty list when unset.
*/}}
{{- define "platzwart.gitSecret" -}}
{{- $s := .Values.git.secret -}}
{{- if not $s -}}
[]
{{- else if contains "/" $s -}}
{{- $parts := splitList "/" $s -}}
{{- if or (ne (len $parts) 2) (not (index $parts 0)) (not (index $parts 1)) -}}
{{- fail (printf "git.secret %q: want \"name\" or \"namespace/name\"" $s) -}}
{{- end -}}
{{- toJson $parts -}}
{{- else -}}
{{- toJson (list .Release.Namespace $s) -}}
{{- end -}}
{{- end -}}

{{/* Mount points of the files the controller reads. */}}
{{- define "platzwart.cacheDir" -}}/var/cache/platzwart{{- end -}}
{{- define "platzwart.webhookSecretFile" -}}/etc/platzwart/webhook/secret{{- end -}}
{{- define "platzwart.verifyKeysFile" -}}/etc/platzwart/verify/keys{{- end -}}

{{/* Checks that no combination of values yields a controller that misbehaves. */}}
{{- define "platzwart.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicas: %d replicas need leaderElection.enabled=true: without it every replica would fetch Git and reconcile the same workplaces" (int .Values.replicas)) -}}
{{- end -}}
{{- if and .Values.git.tag .Values.git.commit -}}
{{- fail "git.tag and git.commit: set at most one of them (a tag, a commit, or else git.branch)" -}}
{{- end -}}
{{- if and .Values.git.verify.mode (not .Values.git.verify.keysSecret.name) -}}
{{- fail "git.verify.keysSecret.name: required when git.verify.mode is set (the Secret with the trusted public keys)" -}}
{{- end -}}
{{- end -}}
