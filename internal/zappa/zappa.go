// Package zappa turns a Zappa project's settings (zappa_settings.json,
// .toml, .yml or .yaml) into a Stoke config.
//
// One Zappa stage becomes one python-wsgi function. Every key of the stage is
// accounted for: carried over (memory_size → memory, keep_warm → keep_warm,
// …), honoured as is (binary_support), not needed on Stoke (s3_bucket), or
// listed as not imported with the reason, so a user moving off Zappa knows
// exactly what changed. The package reads and returns bytes; the command
// writes files.
package zappa

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/stokehq/stoke/internal/config"
)

// Kind says what happened to one Zappa key.
type Kind int

const (
	// Honoured: the key's meaning carries over to the generated config
	// (a switch that is off included: it asks for nothing).
	Honoured Kind = iota
	// Changed: carried over, but with a difference the user should check.
	Changed
	// Unsupported: a Zappa feature Stoke does not reproduce.
	Unsupported
	// Unknown: not a documented Zappa key (a typo, or a newer Zappa).
	Unknown
	// NotNeeded: Zappa's packaging and AWS bookkeeping (s3_bucket,
	// exclude, profile_name…): nothing the app sees depends on it here.
	NotNeeded
)

// Note is the fate of one key of the stage.
type Note struct {
	Key  string
	Kind Kind
	Why  string
}

func (n Note) String() string { return n.Key + ": " + n.Why }

// Options are the import's inputs besides the settings themselves.
type Options struct {
	// Stage to import; empty picks the only stage, or fails listing them.
	Stage string
	// Output is where the stoke.yaml will be written (need not exist yet);
	// cwd is written relative to its directory. Empty means ./stoke.yaml.
	Output string
	// Python is the interpreter to write as python:; empty means python3.
	Python string
}

// Result is a generated config and the account of every key.
type Result struct {
	Stage    string
	Function string
	Format   Format // how the settings file was read
	YAML     []byte
	// Config is YAML as Stoke's parser reads it (paths resolved against
	// Options.Output), for checks that run the app.
	Config *config.Config
	Notes  []Note // sorted by key
	// Warnings are config.Parse's warnings about the generated file (say,
	// a timeout above the gateway's).
	Warnings []string
}

// Select returns the notes of the given kinds, in key order.
func (r *Result) Select(kinds ...Kind) []Note {
	var out []Note
	for _, n := range r.Notes {
		for _, k := range kinds {
			if n.Kind == k {
				out = append(out, n)
			}
		}
	}
	return out
}

// Import reads Zappa settings from data as Zappa reads the file at path
// (JSON through Hjson, TOML, or YAML by its extension); path also names the
// file in messages and locates the project. It returns the Stoke config for
// one stage.
func Import(path string, data []byte, opt Options) (*Result, error) {
	stages, format, err := decode(path, data)
	if err != nil {
		return nil, err
	}
	stage, err := pickStage(path, stages, opt.Stage)
	if err != nil {
		return nil, err
	}
	settings, err := resolveExtends(path, stages, stage)
	if err != nil {
		return nil, err
	}
	absSettings, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("locate %s: %w", path, err)
	}
	out := opt.Output
	if out == "" {
		out = "stoke.yaml"
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("locate %s: %w", out, err)
	}
	py := opt.Python
	if py == "" {
		py = "python3"
	}
	m := &mapper{python: py, file: path, stage: stage, s: settings, projectDir: filepath.Dir(absSettings), outDir: filepath.Dir(absOut)}
	if format == HJSON {
		m.notes = append(m.notes, Note{Key: "(file)", Kind: Changed,
			Why: "not strict JSON (comments, or a missing or trailing comma); read as Hjson, as Zappa reads zappa_settings.json"})
	}
	if err := m.run(); err != nil {
		return nil, err
	}
	doc, err := m.render()
	if err != nil {
		return nil, err
	}
	// The file is only useful if Stoke accepts it: check with the real
	// parser, so a mapping bug shows here and not at `stoke serve`.
	cfg, err := config.Parse(out, doc)
	if err != nil {
		return nil, fmt.Errorf("the generated config does not validate (an importer bug; please report it): %w", err)
	}
	sort.SliceStable(m.notes, func(i, j int) bool { return m.notes[i].Key < m.notes[j].Key })
	return &Result{Stage: stage, Function: m.name, Format: format, YAML: doc, Config: cfg, Notes: m.notes, Warnings: cfg.Warnings}, nil
}
