package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validateRepo writes a one-workplace repository and returns its directory.
func validateRepo(t *testing.T, namespace, values string) string {
	t.Helper()
	dir := t.TempDir()
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: ` + namespace + `}
spec:
  domain: demo.192.168.49.2.sslip.io
  profile: minikube
  components: {chat: none, video: none, office: none}
` + values
	if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestValidateWarnsAboutCredentialsAndStrictRefuses(t *testing.T) {
	dir := validateRepo(t, "demo", "  values:\n    keycloak:\n      extraEnv:\n      - {name: SMTP_PASSWORD, value: do-not-print-me}\n")
	const want = `workplace.yaml: Workplace "demo": spec.values.keycloak.extraEnv[0].value: looks like a credential literal (the value of "SMTP_PASSWORD")`
	out, errOut, err := runCLI(t, "validate", dir)
	if err != nil {
		t.Fatalf("validate without --strict: %v", err)
	}
	if !strings.Contains(errOut, "warning: "+dir+"/"+want) || !strings.Contains(out, "is valid") {
		t.Errorf("validate printed\nstdout: %s\nstderr: %s\nwant the warning %q", out, errOut, want)
	}
	_, errOut2, err := runCLI(t, "validate", "--strict", dir)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("validate --strict: %v; want %q", err, want)
	}
	for _, s := range []string{out, errOut, errOut2, errString(err)} {
		if strings.Contains(s, "do-not-print-me") {
			t.Errorf("the value was printed: %s", s)
		}
	}
}

func TestValidateDenyNamespace(t *testing.T) {
	for _, c := range []struct {
		namespace string
		flags     []string
		want      string
	}{
		{"default", nil, `namespace "default" is denied for workplaces`},
		{"kube-system", nil, `namespace "kube-system" is denied for workplaces (matches "kube-*"`},
		{"platzwart", []string{"--deny-namespace", "kube-*", "--deny-namespace", "platzwart"}, `namespace "platzwart" is denied`},
		{"demo", []string{"--deny-namespace", "kube-*"}, ""},
	} {
		dir := validateRepo(t, c.namespace, "")
		_, _, err := runCLI(t, append(append([]string{"validate"}, c.flags...), dir)...)
		if c.want == "" {
			if err != nil {
				t.Errorf("namespace %s %v: %v", c.namespace, c.flags, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `workplace.yaml: Workplace "demo": metadata.namespace`) {
			t.Errorf("namespace %s %v: %v; want %q", c.namespace, c.flags, err, c.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
