package plan_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// renderObjects renders the example with text replacements, see renderObjectsFrom.
func renderObjects(t *testing.T, replace map[string]string) map[string]map[string]string {
	t.Helper()
	s := readExample(t)
	for from, to := range replace {
		if !strings.Contains(s, from) {
			t.Fatalf("example has no %q", from)
		}
		s = strings.Replace(s, from, to, 1)
	}
	return renderObjectsFrom(t, s)
}

// renderObjectsFrom renders a workplace document and returns, per release, each
// object's YAML by "Kind/name".
func renderObjectsFrom(t *testing.T, workplace string) map[string]map[string]string {
	t.Helper()
	return renderObjectsFromRepo(t, map[string]string{"workplace.yaml": workplace})
}

// renderObjectsFromRepo is renderObjectsFrom for a whole repository (path → content).
func renderObjectsFromRepo(t *testing.T, files map[string]string) map[string]map[string]string {
	t.Helper()
	_, manifests, err := buildAll(t, repoFS(files))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, m := range manifests[0] {
		objs := map[string]string{}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(m.Bytes())))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096).Decode(&u.Object); err != nil || len(u.Object) == 0 {
				continue
			}
			// The release header comment carries the digest; compare objects only.
			objs[u.GetKind()+"/"+u.GetName()] = stripComments(string(doc))
		}
		out[m.Release] = objs
	}
	return out
}

func stripComments(doc string) string {
	var keep []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(l, "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// changes compares two renders: releases added, removed and changed, and per changed
// release the objects that differ.
func changes(before, after map[string]map[string]string) (added, removed []string, changed map[string][]string) {
	changed = map[string][]string{}
	for rel, objs := range after {
		old, ok := before[rel]
		if !ok {
			added = append(added, rel)
			continue
		}
		var diff []string
		for k, v := range objs {
			if old[k] != v {
				diff = append(diff, k)
			}
		}
		for k := range old {
			if _, ok := objs[k]; !ok {
				diff = append(diff, k+" (removed)")
			}
		}
		if len(diff) > 0 {
			sort.Strings(diff)
			changed[rel] = diff
		}
	}
	for rel := range before {
		if _, ok := after[rel]; !ok {
			removed = append(removed, rel)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed, changed
}

func keys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func assertSwap(t *testing.T, before, after map[string]map[string]string, wantAdded, wantRemoved, wantChanged []string) map[string][]string {
	t.Helper()
	added, removed, changed := changes(before, after)
	if strings.Join(added, ",") != strings.Join(wantAdded, ",") {
		t.Errorf("added releases %v, want %v", added, wantAdded)
	}
	if strings.Join(removed, ",") != strings.Join(wantRemoved, ",") {
		t.Errorf("removed releases %v, want %v", removed, wantRemoved)
	}
	if got := keys(changed); strings.Join(got, ",") != strings.Join(wantChanged, ",") {
		t.Errorf("changed releases %v, want %v; objects: %v", got, wantChanged, changed)
	}
	return changed
}

// TestSwapVideo: jitsi ⇄ bigbluebutton changes the video release, the identity client
// list, the chat client's video settings, the portal's video tile, and the infrastructure Greenlight needs
// (its database and Redis access); files and office stay byte-identical.
func TestSwapVideo(t *testing.T) {
	jitsi := renderObjects(t, nil)
	bbb := renderObjects(t, map[string]string{"video: jitsi ": "video: bigbluebutton "})
	changed := assertSwap(t, jitsi, bbb,
		[]string{"demo-bigbluebutton"}, []string{"demo-jitsi"},
		[]string{"demo-keycloak", "demo-portal", "demo-postgresql", "demo-synapse", "demo-valkey"})
	// The portal's tile follows the swap (TestSwapVideoMovesThePortalTile).
	// In the chat release only Element follows the video choice; Synapse stays as it was.
	if got := strings.Join(changed["demo-synapse"], ","); got != "ConfigMap/demo-synapse-element-config,Deployment/demo-synapse-element" {
		t.Errorf("chat release objects changed by the video swap: %s", got)
	}
	// The reverse swap restores the jitsi render byte for byte.
	back := renderObjects(t, nil)
	if a, r, c := changes(jitsi, back); len(a)+len(r)+len(c) != 0 {
		t.Errorf("swapping back does not restore the render: added %v removed %v changed %v", a, r, c)
	}
}

// TestSwapOfficeNone: office collabora → none removes Collabora and changes only the
// files release.
func TestSwapOfficeNone(t *testing.T) {
	before := renderObjects(t, nil)
	after := renderObjects(t, map[string]string{"office: collabora ": "office: none "})
	assertSwap(t, before, after, nil, []string{"demo-collabora"}, []string{"demo-nextcloud"})
}

// TestSwapExternalPostgres: postgres postgresql → external-postgres removes the
// in-cluster server and rewires its consumers, nothing else.
func TestSwapExternalPostgres(t *testing.T) {
	before := renderObjects(t, nil)
	after := renderObjects(t, map[string]string{
		"  components:\n": "  components:\n    postgres: external-postgres\n",
		"  values:\n":     "  values:\n    external-postgres:\n      host: db.example.org\n      credentialsSecret: demo-db-credentials\n",
	})
	assertSwap(t, before, after, nil, []string{"demo-postgresql"},
		[]string{"demo-keycloak", "demo-nextcloud", "demo-stalwart", "demo-synapse"})
}
