{{/*
Resource name prefix: the release name (platzwart names releases <workplace>-<component>).
*/}}
{{- define "portal.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Standard labels. Call with (dict "root" $ "component" "portal").
*/}}
{{- define "portal.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "portal.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: platzwart
{{- end -}}

{{- define "portal.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Image reference. Call with (dict "image" .Values.x.image "root" $).
global.imageRegistry, when set, replaces every image's registry.
*/}}
{{- define "portal.image" -}}
{{- $registry := .image.registry -}}
{{- with .root.Values.global.imageRegistry }}{{ $registry = . }}{{ end -}}
{{- if $registry -}}
{{ printf "%s/%s:%s" $registry .image.repository .image.tag }}
{{- else -}}
{{ printf "%s:%s" .image.repository .image.tag }}
{{- end -}}
{{- end -}}

{{/*
TLS block of the Ingress.
*/}}
{{- define "portal.ingressTLS" -}}
{{- $tls := .root.Values.routing.tls | default dict -}}
{{- $secret := "" -}}
{{- if $tls.secretName -}}
{{- $secret = $tls.secretName -}}
{{- else if or $tls.clusterIssuer $tls.issuer -}}
{{- $secret = printf "%s-tls" (include "portal.fullname" .root) -}}
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
Where the workplace's CA (routing.tls.caSecret) is mounted in oauth2-proxy.
*/}}
{{- define "portal.caFile" -}}
/etc/platzwart/ca/ca.crt
{{- end -}}

{{/*
The port nginx listens on, on the pod's loopback only: the page is reached through
oauth2-proxy and nothing else.
*/}}
{{- define "portal.upstreamPort" -}}
8080
{{- end -}}

{{/*
The start page. Every text is HTML-escaped; a tile's URL must be http(s) and its
icon a data: image, or the render fails (no javascript: links, no remote images).
*/}}
{{- define "portal.html" -}}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ .Values.title | html }}</title>
<style>
body{margin:0;font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d1f23}
header{padding:1.5rem 2rem;background:#fff;border-bottom:1px solid #dde}
h1{margin:0;font-size:1.4rem;font-weight:600}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(13rem,1fr));gap:1rem;padding:2rem}
a.tile{display:flex;gap:.9rem;align-items:center;padding:1rem;background:#fff;border:1px solid #dde;border-radius:.6rem;color:inherit;text-decoration:none}
a.tile:hover,a.tile:focus{border-color:#3b6fd8;outline:none}
.icon{flex:none;width:3rem;height:3rem;border-radius:.5rem;display:flex;align-items:center;justify-content:center;background:#3b6fd8;color:#fff;font-size:1.4rem;font-weight:600}
.icon img{width:3rem;height:3rem}
.name{font-weight:600}
.desc{font-size:.85rem;color:#555}
</style>
</head>
<body>
<header><h1>{{ .Values.title | html }}</h1></header>
<main>
{{- range .Values.apps }}
{{- if not (regexMatch "^https?://[^\\s\"'<>]+$" .url) }}{{ fail (printf "apps: %q: url %q must be an http(s) URL" .name .url) }}{{ end }}
{{- if and .icon (not (regexMatch "^data:image/(svg\\+xml|png);base64,[A-Za-z0-9+/=]+$" .icon)) }}{{ fail (printf "apps: %q: icon must be a base64 data:image/svg+xml or data:image/png URI" .name) }}{{ end }}
<a class="tile" href="{{ .url | html }}">
{{- if .icon }}<span class="icon"><img src="{{ .icon }}" alt=""></span>{{ else }}<span class="icon">{{ substr 0 1 .name | upper | html }}</span>{{ end -}}
<span><span class="name">{{ .name | html }}</span>{{ with .description }}<br><span class="desc">{{ . | html }}</span>{{ end }}</span></a>
{{- end }}
</main>
</body>
</html>
{{ end -}}

{{/*
nginx's configuration: the page on loopback, temporary files and the pid in /tmp
(read-only root filesystem), no access log, strict headers.
*/}}
{{- define "portal.nginxConf" -}}
worker_processes 1;
pid /tmp/nginx.pid;
error_log /dev/stderr warn;
events {
    worker_connections 256;
}
http {
    client_body_temp_path /tmp/client_temp;
    proxy_temp_path /tmp/proxy_temp;
    fastcgi_temp_path /tmp/fastcgi_temp;
    uwsgi_temp_path /tmp/uwsgi_temp;
    scgi_temp_path /tmp/scgi_temp;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    server_tokens off;
    server {
        listen 127.0.0.1:{{ include "portal.upstreamPort" . }};
        root /etc/platzwart/portal/html;
        add_header Content-Security-Policy "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'" always;
        add_header X-Content-Type-Options nosniff always;
        add_header Referrer-Policy no-referrer always;
        add_header Cache-Control no-cache always;
        location = / {
            try_files /index.html =404;
        }
        location / {
            return 404;
        }
    }
}
{{ end -}}
