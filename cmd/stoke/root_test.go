package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestLegacyLogsFollow(t *testing.T) {
	file := filepath.Join(t.TempDir(), "my.conf")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		in, want []string
		warned   bool
	}{
		{[]string{"logs", "hello", "-f"}, []string{"logs", "hello", "--follow"}, true},
		{[]string{"logs", "-f", "hello"}, []string{"logs", "--follow", "hello"}, true},
		{[]string{"logs", "hello", "-f", "-n", "5"}, []string{"logs", "hello", "--follow", "-n", "5"}, true},
		{[]string{"logs", "hello", "-f", "stoke.yaml"}, []string{"logs", "hello", "-f", "stoke.yaml"}, false},
		{[]string{"logs", "hello", "-f", file}, []string{"logs", "hello", "-f", file}, false},
		{[]string{"ls", "-f", "x"}, []string{"ls", "-f", "x"}, false},
	} {
		warned := false
		got := legacyLogsFollow(tc.in, func(string) { warned = true })
		if !slices.Equal(got, tc.want) || warned != tc.warned {
			t.Errorf("%v → %v (warned %v), want %v (%v)", tc.in, got, warned, tc.want, tc.warned)
		}
	}
}
