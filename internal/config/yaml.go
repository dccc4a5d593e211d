package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The YAML node plumbing: decoding, syntax error lines, mappings with
// merge keys, and where each problem is reported.

var yamlErrRe = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// decode parses the YAML into a node tree; nil means an empty file.
func (p *parser) decode(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 reports errors by panicking internally; should one escape
		// on hostile input, it is still just a bad file.
		if r := recover(); r != nil {
			p.errf(nil, "", "YAML parser failed: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			p.syntaxErr(data, err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			p.syntaxErr(data, err)
		} else {
			p.errf(&extra, "", "a second YAML document; allowed: one document per file")
		}
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// syntaxErr reports a YAML error at the line where the text goes wrong.
// yaml.v3 reports the line where the enclosing block began, or none at all
// on the first line, so the line is found by parsing growing prefixes of
// the file: the first prefix failing with the same problem ends at it.
func (p *parser) syntaxErr(data []byte, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlErrRe.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	// yaml.v3's line is at or before the problem, so the search starts
	// there; it is bounded because each attempt parses the prefix again.
	const maxBytes, maxTries = 32 << 10, 50
	if len(data) <= maxBytes {
		lines := bytes.SplitAfter(data, []byte("\n"))
		from := max(line-1, 1)
		for i := from; i <= len(lines) && i < from+maxTries; i++ {
			prefix := bytes.Join(lines[:i], nil)
			if perr := decodeAll(prefix); perr != nil && strings.HasSuffix(perr.Error(), msg) {
				line = i
				break
			}
		}
	}
	if line == 0 {
		line = 1
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: "YAML syntax error: " + msg})
}

// decodeAll parses every document in data, returning the first error.
func decodeAll(data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func (p *parser) errf(n *yaml.Node, key, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) warnf(line int, format string, args ...any) {
	p.warns = append(p.warns, fmt.Sprintf("%s:%d: ", p.file, line)+fmt.Sprintf(format, args...))
}

type pair struct {
	key, val *yaml.Node
	name     string
}

// walk applies the keys of mapping n to dst using table, reporting unknown
// keys. A key set to null keeps its default. It returns the keys present.
func walk[T any](p *parser, n *yaml.Node, path string, table map[string]setter[T], dst T) map[string]*yaml.Node {
	present := map[string]*yaml.Node{}
	for _, pr := range p.pairs(n, path) {
		key := join(path, pr.name)
		set, ok := table[pr.name]
		if !ok {
			p.errf(pr.key, key, "unknown key%s; allowed: %s", suggest(pr.name, table), allowed(table))
			continue
		}
		present[pr.name] = pr.val
		if !isNull(pr.val) {
			set(p, key, pr.val, dst)
		}
	}
	return present
}

// pairs returns the entries of mapping n in file order, with YAML merge
// keys (<<) applied; null counts as an empty mapping.
func (p *parser) pairs(n *yaml.Node, path string) []pair {
	r := resolve(n)
	if isNull(r) {
		return nil
	}
	if r.Kind != yaml.MappingNode {
		p.errf(n, path, "expected a mapping, got %s", describe(r))
		return nil
	}
	seen := map[string]int{}
	out := p.mapping(r, path, seen, true, nil)
	return out
}

// mapping collects r's entries not already in seen. explicit entries are
// the mapping's own (duplicates are errors); merged ones only fill gaps.
// visited guards against merge cycles and repeated expansion.
func (p *parser) mapping(r *yaml.Node, path string, seen map[string]int, explicit bool, visited map[*yaml.Node]bool) []pair {
	var out []pair
	var merges []*yaml.Node
	for i := 0; i+1 < len(r.Content); i += 2 {
		k, v := r.Content[i], r.Content[i+1]
		kr := resolve(k)
		if kr.Kind != yaml.ScalarNode {
			p.errf(k, path, "a key must be a string, got %s", describe(kr))
			continue
		}
		if kr.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if line, dup := seen[kr.Value]; dup {
			if explicit {
				p.errf(k, join(path, kr.Value), "duplicate key; first set at line %d", line)
			}
			continue
		}
		seen[kr.Value] = k.Line
		out = append(out, pair{k, v, kr.Value})
	}
	if visited == nil {
		visited = map[*yaml.Node]bool{r: true}
	}
	for _, m := range merges {
		mr := resolve(m)
		srcs := []*yaml.Node{m}
		if mr.Kind == yaml.SequenceNode {
			srcs = mr.Content
		}
		for _, src := range srcs {
			sr := resolve(src)
			if sr.Kind != yaml.MappingNode {
				p.errf(src, path, "<< merges %s; allowed: a mapping or a list of mappings", describe(sr))
				continue
			}
			if visited[sr] {
				continue
			}
			visited[sr] = true
			out = append(out, p.mapping(sr, path, seen, false, visited)...)
		}
	}
	return out
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	r := resolve(n)
	return r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an unresolved alias"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
