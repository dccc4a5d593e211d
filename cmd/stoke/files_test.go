package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteNewRefusesOverwrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stoke.yaml")
	if err := writeNew(p, []byte("a: 1\n"), false, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeNew(p, []byte("b: 2\n"), false, 0o644); err == nil || !strings.Contains(err.Error(), "already exists; use --force") {
		t.Errorf("second write: %v", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "a: 1\n" {
		t.Errorf("file changed to %q", got)
	}
	// Forced over a 0644 file, with secrets: the mode follows.
	if err := writeNew(p, []byte("b: 2\n"), true, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "b: 2\n" {
		t.Errorf("forced write left %q", got)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after a forced write with secrets: %v %v", fi.Mode(), err)
	}
}
