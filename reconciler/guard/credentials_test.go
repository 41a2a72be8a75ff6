package guard

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
)

// A throwaway RSA key header and body shape, a JWT of {"alg":"HS256"}.{"sub":"x"}, and
// a random-looking string: none is a real credential.
const (
	pemKey   = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----\n"
	jwtToken = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW5vdC1yZWFsLWF0LWFsbA"
	random   = "q8Zr4XvT2mKp9LwN7bYc3HsF6jDe1GuA5tRk0PnV"
)

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCredentialsFound(t *testing.T) {
	values := decode(t, `{
	  "adminPassword": "hunter2",
	  "smtp": {"PASS": "x", "auth": {"api_key": "k-123"}},
	  "s3": {"secretKey": "abc", "accessKey": "def"},
	  "extraEnv": [
	    {"name": "LOG_LEVEL", "value": "debug"},
	    {"name": "DB_PASSWORD", "value": "letmein"},
	    {"name": "OIDC_CLIENT_SECRET", "value": "s3cr3t"}
	  ],
	  "tls": {"key": "`+strings.ReplaceAll(pemKey, "\n", `\n`)+`"},
	  "webhook": {"header": "`+jwtToken+`"},
	  "opaque": "`+random+`",
	  "list": ["`+random+`"]
	}`)
	got := Credentials(values, "nextcloud")
	want := []Finding{
		{"nextcloud.adminPassword", `key "adminPassword"`},
		{"nextcloud.extraEnv[1].value", `the value of "DB_PASSWORD"`},
		{"nextcloud.extraEnv[2].value", `the value of "OIDC_CLIENT_SECRET"`},
		{"nextcloud.list[0]", "a long high-entropy string"},
		{"nextcloud.opaque", "a long high-entropy string"},
		{"nextcloud.s3.accessKey", `key "accessKey"`},
		{"nextcloud.s3.secretKey", `key "secretKey"`},
		{"nextcloud.smtp.PASS", `key "PASS"`},
		{"nextcloud.smtp.auth.api_key", `key "api_key"`},
		{"nextcloud.tls.key", "a PEM private key"},
		{"nextcloud.webhook.header", "a JSON Web Token"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findings:\n got %q\nwant %q", got, want)
	}
}

func TestCredentialsReferencesPass(t *testing.T) {
	values := decode(t, `{
	  "servers": [{"url": "https://bbb.example.org/bigbluebutton/", "secret": {"name": "bbb-secret", "key": "secret"}}],
	  "existingSecret": "nextcloud-admin",
	  "existingSecretPasswordKey": "password",
	  "passwordSecret": {"name": "db", "key": "password"},
	  "tls": {"secretName": "wildcard-tls"},
	  "tokenUrl": "https://id.example.org/realms/demo/protocol/openid-connect/token",
	  "passwordLength": 32,
	  "accessTokenLifespan": "5m",
	  "tokenTimeout": "30s",
	  "smtpPasswordUser": "mailer",
	  "password": "",
	  "token": "${TOKEN}",
	  "extraEnv": [
	    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
	    {"name": "PASSWORD_FILE", "value": "/run/secrets/db"}
	  ],
	  "image": "docker.io/library/nextcloud@sha256:4c8d9b2e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4",
	  "description": "AVeryLongCamelCaseIdentifierWithoutAnySpaces",
	  "cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	}`)
	if got := Credentials(values, "x"); len(got) > 0 {
		t.Errorf("references and ordinary values reported as credentials: %q", got)
	}
}

func TestWorkplaceCredentialsNameFileAndField(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"workplace.yaml": `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo}
spec:
  domain: example.org
  profile: leaky
  values:
    nextcloud:
      extraEnv:
      - {name: SMTP_PASSWORD, value: "do-not-print-me"}
  patches:
    keycloak:
      - target: {kind: Deployment, name: demo-keycloak}
        patch: |
          - op: add
            path: /spec/template/spec/containers/0/env/-
            value: {name: LDAP_BIND_PASSWORD, value: "do-not-print-me-in-a-patch"}
`,
		"profiles/leaky.yaml": `apiVersion: platzwart.io/v1alpha1
kind: Profile
metadata: {name: leaky}
spec:
  extends: minikube
  values:
    keycloak: {adminPassword: "do-not-print-me-either"}
`,
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := load.Dir(dir, platzwart.Builtin(), "")
	if err != nil {
		t.Fatal(err)
	}
	ws := WorkplaceCredentials(repo.Workplaces[0], repo.Catalog)
	var msgs []string
	for _, w := range ws {
		msgs = append(msgs, strings.TrimPrefix(w.Error(), dir+"/"))
	}
	want := []string{
		`workplace.yaml: Workplace "demo": spec.values.nextcloud.extraEnv[0].value: looks like a credential literal (the value of "SMTP_PASSWORD"); keep credentials out of Git: reference a Secret instead (valueFrom.secretKeyRef in env lists, or the chart's existingSecret-style value)`,
		`workplace.yaml: Workplace "demo": spec.patches.keycloak[0].patch[0].value.value: looks like a credential literal (the value of "LDAP_BIND_PASSWORD"); keep credentials out of Git: reference a Secret instead (valueFrom.secretKeyRef in env lists, or the chart's existingSecret-style value)`,
		`profiles/leaky.yaml: Profile "leaky": spec.values.keycloak.adminPassword: looks like a credential literal (key "adminPassword"); keep credentials out of Git: reference a Secret instead (valueFrom.secretKeyRef in env lists, or the chart's existingSecret-style value)`,
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("warnings:\n got %q\nwant %q", msgs, want)
	}
	for _, m := range msgs {
		if strings.Contains(m, "do-not-print-me") {
			t.Errorf("a warning prints the value: %s", m)
		}
	}
}

func TestBuiltinCatalogAndExampleCarryNoCredentials(t *testing.T) {
	repo, err := load.Dir("../../examples/workplace", platzwart.Builtin(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range repo.Workplaces {
		if ws := WorkplaceCredentials(w, repo.Catalog); len(ws) > 0 {
			t.Errorf("false positives in the example: %v", ws)
		}
	}
	for name, p := range repo.Catalog.Profiles {
		if f := scanValues(p.Spec.Values); len(f) > 0 {
			t.Errorf("false positives in built-in profile %s: %q", name, f)
		}
	}
}
