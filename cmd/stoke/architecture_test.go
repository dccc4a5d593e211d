package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestArchitectureTableMatchesImports keeps docs/ARCHITECTURE.md true: its
// package table is ordered so that dependencies point down it only, and
// every package is in it. The import graph is go list's.
func TestArchitectureTableMatchesImports(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range regexp.MustCompile("(?m)^\\| `((?:cmd|internal)/[a-z/]+)` \\|").FindAllSubmatch(doc, -1) {
		pos[string(m[1])] = i
	}
	const module = "github.com/stokehq/stoke/"
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./cmd/...", "./internal/...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(f[0], module)
		if strings.HasSuffix(pkg, "test") { // sandboxtest, otlptest: test helpers
			continue
		}
		at, ok := pos[pkg]
		if !ok {
			t.Errorf("%s is not in docs/ARCHITECTURE.md's package table", pkg)
			continue
		}
		for _, imp := range f[1:] {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours || strings.HasSuffix(dep, "test") {
				continue
			}
			if d, ok := pos[dep]; ok && d <= at {
				t.Errorf("%s imports %s, which docs/ARCHITECTURE.md lists above it", pkg, dep)
			}
		}
	}
}
