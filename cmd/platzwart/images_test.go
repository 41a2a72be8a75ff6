package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestImagesCommand: -o txt is sorted, unique, under the workplace's registry mirror,
// with the digest of a pinned image; the table marks it pinned; -o json names where
// each image runs.
func TestImagesCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := memoCatalog(t)
	files["workplace.yaml"] = strings.Replace(diffWorkplace("demo", "jitsi", "96mb", apiKey1, token1),
		"  profile: minikube\n", "  profile: minikube\n  images: {registry: registry.example.org/mirror}\n", 1)
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	txt, _, err := runCLI(t, "images", "-o", "txt", dir)
	if err != nil {
		t.Fatal(err)
	}
	refs := strings.Split(strings.TrimSpace(txt), "\n")
	if !slices.IsSorted(refs) || len(slices.Compact(slices.Clone(refs))) != len(refs) {
		t.Errorf("-o txt is not sorted and unique:\n%s", txt)
	}
	const memo = "registry.example.org/mirror/library/busybox:1.37.0@sha256:0000000000000000000000000000000000000000000000000000000000000001"
	if !slices.Contains(refs, memo) {
		t.Errorf("-o txt lacks %s:\n%s", memo, txt)
	}
	for _, r := range refs {
		if !strings.HasPrefix(r, "registry.example.org/mirror/") {
			t.Errorf("%s is not under the mirror", r)
		}
	}
	table, _, err := runCLI(t, "images", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, memo+"  digest  memo ") {
		t.Errorf("the table does not show memo's image as pinned:\n%s", table)
	}
	js, _, err := runCLI(t, "images", "-o", "json", dir)
	if err != nil {
		t.Fatal(err)
	}
	var list []struct {
		Reference, Repository, Tag, Digest string
		Uses                               []struct{ Workplace, Release, Component, Object, Container string }
	}
	if err := json.Unmarshal([]byte(js), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != len(refs) {
		t.Errorf("-o json lists %d images, -o txt %d", len(list), len(refs))
	}
	for _, img := range list {
		if img.Reference == memo && (img.Digest == "" || len(img.Uses) != 1 || img.Uses[0].Object != "Deployment/demo-memo" || img.Uses[0].Container != "memo") {
			t.Errorf("memo's image: %+v", img)
		}
	}
	if _, _, err := runCLI(t, "images", "-o", "wide", dir); err == nil {
		t.Error("-o wide was accepted")
	}
}
