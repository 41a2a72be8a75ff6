package render

import (
	"context"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// noise is n bytes of incompressible text (base64 of a seeded random stream).
func noise(seed uint64, n int) string {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed)}))
	raw := make([]byte, n*3/4+3)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	return base64.StdEncoding.EncodeToString(raw)[:n]
}

func TestReleaseSize(t *testing.T) {
	cm := map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}
	m, err := Release(context.Background(), testRelease(cm, map[string]any{"blob": noise(1, 100<<10)}))
	if err != nil {
		t.Fatal(err)
	}
	// 100 KiB of base64 noise: gzip saves a quarter, base64 adds a third back.
	if m.StoredSize < 100<<10 || m.StoredSize > 110<<10 {
		t.Errorf("StoredSize = %d, want about 100 KiB", m.StoredSize)
	}
	_, err = Release(context.Background(), testRelease(cm, map[string]any{"blob": noise(1, 1100<<10)}))
	wantErr(t, err, `component "files": release demo-files is 110`, "as Helm stores it", "over the limit of 992 KiB")
}

func TestValidateRefusesAReleaseHelmCannotStore(t *testing.T) {
	// Two files, each under the 1 MiB file limit, add up to a release over the limit.
	profile := `apiVersion: platzwart.io/v1alpha1
kind: Profile
metadata: {name: big}
spec:
  extends: minikube
  values:
    keycloak: {themeBlobA: "` + noise(2, 700<<10) + `"}
`
	doc := strings.Replace(workplaceDoc("a", "team-a", "a.example.org", "  values:\n    keycloak: {themeBlobB: \""+noise(3, 700<<10)+"\"}\n"), "profile: minikube", "profile: big", 1)
	_, err := renderFiles(t, map[string]string{"a.yaml": doc, "profiles/big.yaml": profile}, Options{})
	wantErr(t, err, `a.yaml: Workplace "a": component "keycloak": release a-keycloak is 14`, "over the limit of 992 KiB")
}
