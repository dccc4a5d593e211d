package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/stokehq/stoke/internal/simulate"
	"github.com/stokehq/stoke/internal/tune"
)

// The files the CLI writes for the user; the packages below return bytes.

// writeNew writes data to path with mode perm, refusing to replace an
// existing file unless force: an import must not silently clobber a
// hand-edited config.
func writeNew(path string, data []byte, force bool, perm os.FileMode) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, perm)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists; use --force to overwrite it", path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil { // a replaced file keeps its mode otherwise
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeReport writes a tune report in the format path's extension names,
// whole or not at all.
func writeReport(path string, r *tune.Report) error {
	b, err := tune.Render(path, r)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// writeChart writes stoke simulate's Pareto chart (--out) as .svg or .png,
// whole or not at all.
func writeChart(path string, r *simulate.Report) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".svg" && ext != ".png" {
		return fmt.Errorf("--out %s: unknown format %q; allowed: .svg, .png", path, ext)
	}
	var buf bytes.Buffer
	if err := simulate.WriteChart(&buf, r, ext[1:]); err != nil {
		return fmt.Errorf("rendering %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing the chart: %w", err)
	}
	return nil
}
