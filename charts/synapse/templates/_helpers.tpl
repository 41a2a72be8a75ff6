{{/*
Resource name prefix: the release name (platzwart names releases <workplace>-<component>).
*/}}
{{- define "synapse.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Standard labels. Call with (dict "root" $ "component" "synapse").
*/}}
{{- define "synapse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "synapse.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: platzwart
{{- end -}}

{{- define "synapse.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Image reference. Call with (dict "image" .Values.x.image "root" $).
global.imageRegistry, when set, replaces every image's registry.
*/}}
{{- define "synapse.image" -}}
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
{{- define "synapse.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Name of the Secret with the workplace CA certificate (routing.tls.caSecret.name), or "".
*/}}
{{- define "synapse.caSecretName" -}}
{{- $tls := .Values.routing.tls | default dict -}}
{{- dig "caSecret" "name" "" $tls -}}
{{- end -}}

{{/*
Key of that Secret holding the PEM certificate (default ca.crt).
*/}}
{{- define "synapse.caSecretKey" -}}
{{- $tls := .Values.routing.tls | default dict -}}
{{- dig "caSecret" "key" "ca.crt" $tls | default "ca.crt" -}}
{{- end -}}

{{/*
TLS block of the Ingress: one entry covering every host of the release.
*/}}
{{/*
Matrix client-server paths MAS answers instead of Synapse (its compatibility
layer: login, logout, refresh for every client API version MAS routes), as
path prefixes on hosts.synapse.
*/}}
{{- define "synapse.masCompatPaths" -}}
{{- $paths := list -}}
{{- range $version := list "r0" "v3" -}}
{{- range $endpoint := list "login" "logout" "refresh" -}}
{{- $paths = append $paths (printf "/_matrix/client/%s/%s" $version $endpoint) -}}
{{- end -}}
{{- end -}}
{{- toJson $paths -}}
{{- end -}}

{{- define "synapse.ingressTLS" -}}
{{- $tls := .root.Values.routing.tls | default dict -}}
{{- $secret := "" -}}
{{- if $tls.secretName -}}
{{- $secret = $tls.secretName -}}
{{- else if or $tls.clusterIssuer $tls.issuer -}}
{{- $secret = printf "%s-tls" (include "synapse.fullname" .root) -}}
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
homeserver.yaml, rendered without any secret value. Secrets come from files
(*_path options) and the PGPASSWORD environment variable.
*/}}
{{- define "synapse.homeserverConfig" -}}
{{- $v := .Values -}}
{{- $s := $v.synapse -}}
{{- $resources := list "client" -}}
{{- if $s.federation.enabled }}{{ $resources = append $resources "federation" }}{{ end -}}
{{- $cfg := dict
  "server_name" (required "serverName is required" $v.serverName)
  "public_baseurl" (printf "https://%s/" (required "hosts.synapse is required" $v.hosts.synapse))
  "report_stats" false
  "enable_registration" false
  "serve_server_wellknown" false
  "media_store_path" "/data/media_store"
  "signing_key_path" "/data/keys/signing.key"
  "log_config" "/config/log.yaml"
  "max_upload_size" $s.maxUploadSize
  "macaroon_secret_key_path" "/secrets/macaroon-secret-key"
  "registration_shared_secret_path" "/secrets/registration-shared-secret"
  "form_secret_path" "/secrets/form-secret"
  "password_config" (dict "enabled" $s.passwordLogin)
  "suppress_key_server_warning" true
-}}
{{- $_ := set $cfg "web_client_location" (printf "https://%s/" (required "hosts.element is required" $v.hosts.element)) -}}
{{- $listener := dict
  "port" 8008 "tls" false "type" "http" "x_forwarded" true
  "bind_addresses" $s.bindAddresses
  "resources" (list (dict "names" $resources "compress" false)) -}}
{{- $_ := set $cfg "listeners" (list $listener) -}}
{{- $db := $v.database -}}
{{- $args := dict
  "host" (required "database.host is required" $db.host)
  "port" (int $db.port)
  "user" (required "database.user is required" $db.user)
  "dbname" (required "database.name is required" $db.name)
  "cp_min" (int $db.poolMin) "cp_max" (int $db.poolMax)
  "keepalives_idle" 10 "keepalives_interval" 10 "keepalives_count" 3 -}}
{{- with $db.sslMode }}{{ $_ := set $args "sslmode" . }}{{ end -}}
{{- $_ := set $cfg "database" (dict "name" "psycopg2" "txn_limit" 10000 "args" $args) -}}
{{- if not $s.federation.enabled -}}
{{- $_ := set $cfg "federation_domain_whitelist" list -}}
{{- $_ := set $cfg "trusted_key_servers" list -}}
{{- end -}}
{{- if $v.mas.enabled -}}
{{- if $s.passwordLogin -}}
{{- fail "synapse.passwordLogin must be false with mas.enabled: Synapse refuses password login when authentication is delegated to MAS" -}}
{{- end -}}
{{- $_ := set $cfg "matrix_authentication_service" (dict
  "enabled" true
  "endpoint" (printf "http://%s-mas:8080/" (include "synapse.fullname" .))
  "secret_path" "/mas/shared-secret") -}}
{{- else if $v.oidc.enabled -}}
{{- $mapping := dict
  "localpart_template" (printf "{{ user.%s }}" $v.oidc.localpartClaim)
  "display_name_template" "{{ user.name }}"
  "email_template" "{{ user.email }}" -}}
{{- $provider := dict
  "idp_id" $v.oidc.idpID
  "idp_name" $v.oidc.idpName
  "issuer" (required "oidc.issuerURL is required when oidc.enabled" $v.oidc.issuerURL)
  "client_id" (required "oidc.clientID is required when oidc.enabled" $v.oidc.clientID)
  "client_secret_path" "/oidc/client-secret"
  "client_auth_method" "client_secret_basic"
  "scopes" $v.oidc.scopes
  "allow_existing_users" true
  "backchannel_logout_enabled" true
  "user_mapping_provider" (dict "config" $mapping) -}}
{{- $_ := set $cfg "oidc_providers" (list $provider) -}}
{{- end -}}
{{- /* Mail notifications through the mail component's in-cluster relay
       (synapse/config/emailconfig.py). The relay speaks plain SMTP inside the
       cluster, admitted by its NetworkPolicy from this release only, so STARTTLS is
       off (enable_tls: false): its certificate names the public mail host, not the
       Service name, and sendmail verifies the name it connects to
       (synapse/handlers/send_email.py tlsname = smtphost). notif_from's %(app)s is
       replaced by app_name. */ -}}
{{- if $v.email.enabled -}}
{{- $_ := set $cfg "email" (dict
  "smtp_host" (required "email.smtpHost is required when email.enabled" $v.email.smtpHost)
  "smtp_port" (int $v.email.smtpPort)
  "enable_tls" false
  "notif_from" (printf "%%(app)s <%s>" (required "email.from is required when email.enabled" $v.email.from))
  "app_name" "Chat"
  "enable_notifs" true
  "notif_for_new_users" true
  "client_base_url" (printf "https://%s/" $v.hosts.element)) -}}
{{- end -}}
{{- $cfg = mustMergeOverwrite $cfg (deepCopy $s.extraConfig) -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "synapse.logConfig" -}}
version: 1
filters:
  context:
    (): synapse.logging.context.LoggingContextFilter
    request: ""
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  console:
    class: logging.StreamHandler
    formatter: precise
    filters: [context]
loggers:
  synapse.storage.SQL:
    level: WARNING
root:
  level: {{ .Values.synapse.logLevel }}
  handlers: [console]
disable_existing_loggers: false
{{- end -}}

{{/*
Element Web config.json. Only this (and the Element Deployment's checksum)
depends on the video capability.
*/}}
{{- define "synapse.elementConfig" -}}
{{- $v := .Values -}}
{{- $e := $v.element -}}
{{- $hs := dict "base_url" (printf "https://%s" $v.hosts.synapse) "server_name" $v.serverName -}}
{{- $settings := dict "UIFeature.registration" false "UIFeature.passwordReset" (and $v.synapse.passwordLogin true) "UIFeature.deactivate" false -}}
{{- $cfg := dict
  "default_server_config" (dict "m.homeserver" $hs)
  "disable_custom_urls" true
  "disable_guests" true
  "disable_3pid_login" true
  "brand" $e.brand
  "default_country_code" $e.defaultCountryCode
  "room_directory" (dict "servers" (list $v.serverName))
  "show_labs_settings" false -}}
{{- if $v.oidc.enabled -}}
{{- $_ := set $cfg "sso_redirect_options" (dict "immediate" false "on_welcome_page" (not $v.synapse.passwordLogin)) -}}
{{- end -}}
{{- $kind := $v.video.kind | default "" -}}
{{- if eq $kind "jitsi" -}}
{{- $domain := $v.video.domain -}}
{{- if and (not $domain) $v.video.url -}}{{- $domain = (urlParse $v.video.url).host -}}{{- end -}}
{{- $_ := set $cfg "jitsi" (dict "preferred_domain" (required "video.domain (or video.url) is required for video.kind=jitsi" $domain)) -}}
{{- else if $e.disableVoipWithoutJitsi -}}
{{- /* No Jitsi selected: Element would fall back to meet.element.io for
       conference calls. Hide calling instead of leaking calls to a third party. */ -}}
{{- $_ := set $settings "UIFeature.voip" false -}}
{{- end -}}
{{- $_ := set $cfg "setting_defaults" $settings -}}
{{- $cfg = mustMergeOverwrite $cfg (deepCopy $e.config) -}}
{{- toPrettyJson $cfg -}}
{{- end -}}

{{/*
nginx configuration of the Element pod: the web client on 8080 and the
.well-known/matrix delegation of the bare domain on 8081. Independent of video.
*/}}
{{- define "synapse.nginxConfig" -}}
worker_processes auto;
pid /tmp/nginx.pid;
error_log stderr warn;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path /tmp/client_temp;
    proxy_temp_path /tmp/proxy_temp;
    fastcgi_temp_path /tmp/fastcgi_temp;
    uwsgi_temp_path /tmp/uwsgi_temp;
    scgi_temp_path /tmp/scgi_temp;
    access_log /dev/stdout;
    sendfile on;
    server_tokens off;
    charset utf-8;

    # Element Web (chat host)
    server {
        listen 8080;
        server_name _;
        root /usr/share/nginx/html;
        index index.html;
        add_header X-Frame-Options SAMEORIGIN always;
        add_header X-Content-Type-Options nosniff always;
        add_header Content-Security-Policy "frame-ancestors 'self'" always;

        location = /index.html {
            add_header Cache-Control "no-cache";
            add_header X-Frame-Options SAMEORIGIN always;
            add_header X-Content-Type-Options nosniff always;
            add_header Content-Security-Policy "frame-ancestors 'self'" always;
        }
        location = /version {
            add_header Cache-Control "no-cache";
        }
        # config.json and config.<hostname>.json come from the ConfigMap.
        location /config {
            root /etc/element-web;
            add_header Cache-Control "no-cache";
        }
        location = /health {
            access_log off;
            default_type application/json;
            return 200 '{"status":"ok"}';
        }
    }

    # .well-known/matrix delegation (bare workplace domain)
    server {
        listen 8081;
        server_name _;
        location /.well-known/matrix/ {
            root /srv;
            default_type application/json;
            add_header Access-Control-Allow-Origin "*" always;
            add_header Access-Control-Allow-Methods "GET, OPTIONS" always;
            add_header Access-Control-Allow-Headers "X-Requested-With, Content-Type, Authorization" always;
            add_header Cache-Control "max-age=3600";
        }
        location = /health {
            access_log off;
            default_type application/json;
            return 200 '{"status":"ok"}';
        }
        location / {
            return 404;
        }
    }
}
{{- end -}}

{{- define "synapse.wellKnownClient" -}}
{{- $doc := dict "m.homeserver" (dict "base_url" (printf "https://%s" .Values.hosts.synapse)) -}}
{{- if .Values.mas.enabled -}}
{{- /* What Synapse itself serves with MAS enabled (synapse/rest/well_known.py):
       MAS's issuer and its account management URL. */ -}}
{{- $base := include "synapse.masPublicBase" . -}}
{{- $_ := set $doc "org.matrix.msc2965.authentication" (dict "issuer" $base "account" (printf "%saccount/" $base)) -}}
{{- end -}}
{{- toPrettyJson $doc -}}
{{- end -}}

{{/*
MAS's public base URL (also its OIDC issuer), with a trailing slash.
*/}}
{{- define "synapse.masPublicBase" -}}
{{- printf "https://%s/" (required "hosts.mas is required with mas.enabled" .Values.hosts.mas) -}}
{{- end -}}

{{/*
MAS config.yaml, rendered without any secret value: every secret is a *_file
option pointing at a mounted Secret key. Keys checked against MAS's config
schema (docs/config.schema.json at the pinned tag, see the README).
*/}}
{{- define "synapse.masConfig" -}}
{{- $v := .Values -}}
{{- $m := $v.mas -}}
{{- $fullname := include "synapse.fullname" . -}}
{{- $web := dict
  "name" "web"
  "resources" (list (dict "name" "discovery") (dict "name" "human") (dict "name" "oauth") (dict "name" "compat") (dict "name" "graphql") (dict "name" "assets"))
  "binds" (list (dict "host" $m.bindAddress "port" 8080)) -}}
{{- $internal := dict
  "name" "internal"
  "resources" (list (dict "name" "health"))
  "binds" (list (dict "host" $m.bindAddress "port" 8081)) -}}
{{- $db := $m.database -}}
{{- $database := dict
  "host" (required "mas.database.host is required" $db.host)
  "port" (int $db.port)
  "username" (required "mas.database.user is required" $db.user)
  "password_file" "/secrets/db/password"
  "database" (required "mas.database.name is required" $db.name) -}}
{{- with $db.sslMode }}{{ $_ := set $database "ssl_mode" . }}{{ end -}}
{{- $cfg := dict
  "http" (dict "public_base" (include "synapse.masPublicBase" .) "listeners" (list $web $internal))
  "database" $database
  "matrix" (dict
    "kind" "synapse"
    "homeserver" (required "serverName is required" $v.serverName)
    "endpoint" (printf "http://%s-synapse:8008/" $fullname)
    "secret_file" "/secrets/mas/shared-secret")
  "secrets" (dict
    "encryption_file" "/secrets/mas/encryption"
    "keys" (list
      (dict "kid" "rsa" "key_file" "/secrets/mas/signing-rsa")
      (dict "kid" "ec" "key_file" "/secrets/mas/signing-ec")))
  "passwords" (dict "enabled" false) -}}
{{- if $v.oidc.enabled -}}
{{- $claims := dict
  "localpart" (dict "action" "require" "template" (printf "{{ user.%s }}" $v.oidc.localpartClaim))
  "displayname" (dict "action" "force" "template" "{{ user.name }}")
  "email" (dict "action" "force" "template" "{{ user.email }}")
  "skip_confirmation" true -}}
{{- $provider := dict
  "id" $m.upstream.providerID
  "synapse_idp_id" (printf "oidc-%s" $v.oidc.idpID)
  "issuer" (required "oidc.issuerURL is required when oidc.enabled" $v.oidc.issuerURL)
  "human_name" $v.oidc.idpName
  "client_id" (required "oidc.clientID is required when oidc.enabled" $v.oidc.clientID)
  "client_secret_file" "/secrets/oidc/client-secret"
  "token_endpoint_auth_method" "client_secret_basic"
  "scope" (join " " $v.oidc.scopes)
  "on_backchannel_logout" $m.upstream.onBackchannelLogout
  "claims_imports" $claims -}}
{{- $_ := set $cfg "upstream_oauth2" (dict "providers" (list $provider)) -}}
{{- end -}}
{{- $cfg = mustMergeOverwrite $cfg (deepCopy $m.extraConfig) -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "synapse.wellKnownServer" -}}
{{- toPrettyJson (dict "m.server" (printf "%s:443" .Values.hosts.synapse)) -}}
{{- end -}}
