{{/* Chart name (app.kubernetes.io/name). */}}
{{- define "keycloak.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name prefix: the release name (platzwart convention). */}}
{{- define "keycloak.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "keycloak.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Standard labels; call with (dict "ctx" $ "component" "server"). */}}
{{- define "keycloak.labels" -}}
{{ include "keycloak.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
helm.sh/chart: {{ include "keycloak.chart" .ctx }}
{{- end -}}

{{- define "keycloak.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keycloak.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Image reference; global.imageRegistry overrides the registry. Call with (dict "ctx" $ "image" .Values.image). */}}
{{- define "keycloak.image" -}}
{{- $registry := .image.registry -}}
{{- with .ctx.Values.global -}}{{- if .imageRegistry -}}{{- $registry = .imageRegistry -}}{{- end -}}{{- end -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry .image.repository .image.tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository .image.tag -}}
{{- end -}}
{{- end -}}

{{- define "keycloak.hostname" -}}
{{- required "hostname is required: the public FQDN of Keycloak (e.g. id.example.org)" .Values.hostname -}}
{{- end -}}

{{- define "keycloak.realmName" -}}
{{- required "realm.name is required: the workplace realm" .Values.realm.name -}}
{{- end -}}

{{/* Internal base URL of Keycloak (for keycloak-config-cli). */}}
{{- define "keycloak.internalURL" -}}
{{- printf "http://%s.%s.svc:%v" (include "keycloak.fullname" .) .Release.Namespace .Values.service.port -}}
{{- end -}}

{{/* Name of the environment variable that carries client i's secret into keycloak-config-cli. */}}
{{- define "keycloak.clientSecretEnv" -}}
{{- printf "CLIENT_SECRET_%d" . -}}
{{- end -}}

{{/* Build-time options: the same values in the build init container and at runtime. */}}
{{- define "keycloak.buildEnv" -}}
- name: KC_DB
  value: postgres
- name: KC_HEALTH_ENABLED
  value: "true"
- name: KC_METRICS_ENABLED
  value: {{ .Values.metrics.enabled | quote }}
- name: KC_CACHE
  value: {{ .Values.cache.type | quote }}
{{- with .Values.features }}
- name: KC_FEATURES
  value: {{ join "," . | quote }}
{{- end }}
{{- end -}}

{{/*
The realm as keycloak-config-cli imports it (JSON). No secret values: a confidential
client's secret is the placeholder $(env:CLIENT_SECRET_<i>), substituted by
keycloak-config-cli (import.var-substitution) from an env var fed by secretKeyRef.
*/}}
{{- define "keycloak.realmJSON" -}}
{{- $realm := dict
      "sslRequired" "external"
      "registrationAllowed" false
      "loginWithEmailAllowed" true
      "duplicateEmailsAllowed" false
      "resetPasswordAllowed" false
      "rememberMe" true
      "bruteForceProtected" true
-}}
{{- $_ := set $realm "displayName" (.Values.realm.displayName | default (include "keycloak.realmName" .)) -}}
{{- $realm = mergeOverwrite $realm (deepCopy (.Values.realm.settings | default dict)) -}}
{{- $_ := set $realm "realm" (include "keycloak.realmName" .) -}}
{{- $_ := set $realm "enabled" true -}}
{{- $clients := list -}}
{{- $seen := dict -}}
{{- range $i, $c := .Values.realm.clients -}}
{{- if hasKey $seen $c.clientID -}}
{{- fail (printf "realm.clients: clientID %q is listed twice" $c.clientID) -}}
{{- end -}}
{{- $_ := set $seen $c.clientID true -}}
{{- $attrs := dict "post.logout.redirect.uris" (join "##" ($c.postLogoutRedirectURIs | default list)) -}}
{{- $client := dict
      "clientId" $c.clientID
      "name" $c.clientID
      "enabled" true
      "protocol" "openid-connect"
      "rootUrl" $c.rootURL
      "baseUrl" $c.rootURL
      "redirectUris" ($c.redirectURIs | default list)
      "webOrigins" ($c.webOrigins | default list)
      "standardFlowEnabled" true
      "implicitFlowEnabled" false
      "directAccessGrantsEnabled" false
      "serviceAccountsEnabled" false
      "frontchannelLogout" true
      "publicClient" (ternary true false (eq (toString $c.publicClient) "true"))
      "attributes" $attrs
-}}
{{- /* Logout propagation. Keycloak's browser logout sends back-channel logout tokens
       only to clients with frontchannelLogout false (AuthenticationManager
       partitions client sessions by isFrontchannelLogout()), so a client with a
       back-channel URL and no front-channel URL must have it off. */ -}}
{{- with $c.backchannelLogoutURL -}}
{{- $_ := set $attrs "backchannel.logout.url" . -}}
{{- $_ := set $attrs "backchannel.logout.session.required" "true" -}}
{{- $_ := set $client "frontchannelLogout" false -}}
{{- end -}}
{{- with $c.frontchannelLogoutURL -}}
{{- $_ := set $attrs "frontchannel.logout.url" . -}}
{{- $_ := set $client "frontchannelLogout" true -}}
{{- end -}}
{{- if eq (toString $c.publicClient) "true" -}}
{{- $_ := set $attrs "pkce.code.challenge.method" "S256" -}}
{{- else -}}
{{- $_ := required (printf "realm.clients[%d] (%s): clientSecret.name is required for a confidential client" $i $c.clientID) (dig "clientSecret" "name" "" $c) -}}
{{- $_ := set $client "clientAuthenticatorType" "client-secret" -}}
{{- $_ := set $client "secret" (printf "$(env:%s)" (include "keycloak.clientSecretEnv" $i)) -}}
{{- end -}}
{{- $clients = append $clients $client -}}
{{- end -}}
{{- $_ := set $realm "clients" $clients -}}
{{- toPrettyJson $realm -}}
{{- end -}}
