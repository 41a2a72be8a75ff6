package plan_test

import (
	"strings"
	"testing"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
)

func TestStrictCredentialsRefusesLiterals(t *testing.T) {
	leak := "  values:\n    nextcloud:\n      extraEnv:\n      - {name: SMTP_PASSWORD, value: do-not-print-me}\n"
	for _, c := range []struct {
		name, spec, want string
	}{
		{"strict", "  strictCredentials: true\n" + leak, `repo/workplace.yaml: Workplace "demo": spec.values.nextcloud.extraEnv[0].value: looks like a credential literal (the value of "SMTP_PASSWORD")`},
		{"not strict", leak, ""},
		{"strict, references only", "  strictCredentials: true\n  values:\n    nextcloud:\n      extraEnv:\n      - {name: SMTP_PASSWORD, valueFrom: {secretKeyRef: {name: smtp, key: password}}}\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			repo, err := load.FS(repoFS(map[string]string{"workplace.yaml": workplace(c.spec)}), "repo", platzwart.Builtin(), "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = plan.Build(repo.Workplaces[0], repo.Catalog)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("plan.Build: %v; want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "do-not-print-me") {
				t.Errorf("the error prints the value: %v", err)
			}
		})
	}
}
