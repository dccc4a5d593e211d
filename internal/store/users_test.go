package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestFunctionUID(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	ctx := context.Background()
	taken := func(uid int) bool { return uid == 1000 } // a host user
	a, err := s.FunctionUID(ctx, "a", 1000, 1002, taken)
	if err != nil || a != 1001 {
		t.Fatalf("a: %d %v", a, err)
	}
	b, err := s.FunctionUID(ctx, "b", 1000, 1002, taken)
	if err != nil || b != 1002 {
		t.Fatalf("b: %d %v", b, err)
	}
	if _, err := s.FunctionUID(ctx, "c", 1000, 1002, taken); err == nil {
		t.Error("a third function got a uid from a range of two free ones")
	}
	if again, err := s.FunctionUID(ctx, "a", 1000, 1002, taken); err != nil || again != a {
		t.Errorf("a again: %d %v", again, err)
	}
	// Stable across a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, Options{})
	if again, err := s.FunctionUID(ctx, "b", 1000, 1002, taken); err != nil || again != b {
		t.Errorf("b after reopening: %d %v", again, err)
	}
	// A new range reallocates.
	if moved, err := s.FunctionUID(ctx, "a", 2000, 2005, nil); err != nil || moved != 2000 {
		t.Errorf("a in a new range: %d %v", moved, err)
	}
}

func TestDataDirIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, Options{})
	if err := s.PutConfig(context.Background(), "/x/stoke.yaml", []byte("listen: :1\n")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data_dir mode %v %v", fi.Mode(), err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", e.Name(), fi.Mode())
		}
	}
	if len(ents) == 0 {
		t.Error("no files in data_dir")
	}
}
