package zappa

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/hjson/hjson-go/v4"
	"gopkg.in/yaml.v3"
)

// Format is how a settings file was read.
type Format string

const (
	JSON  Format = "JSON"
	HJSON Format = "Hjson" // JSON with comments, trailing commas, missing commas: Zappa reads .json with hjson
	TOML  Format = "TOML"
	YAML  Format = "YAML"
)

// decode parses the settings file into stage → settings, reading it as
// Zappa's load_settings_file does: .yml/.yaml as YAML (PyYAML's safe_load),
// .toml as TOML, anything else as JSON through hjson. Every value comes out
// as JSON's types (json.Number, bool, string, []any, map[string]any, nil),
// so one mapper serves every format.
func decode(path string, data []byte) (map[string]map[string]any, Format, error) {
	var top any
	var format Format
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yml", ".yaml":
		format = YAML
		top, err = decodeYAML(path, data)
	case ".toml":
		format = TOML
		top, err = decodeTOML(path, data)
	default:
		top, format, err = decodeJSON(path, data)
	}
	if err != nil {
		return nil, format, err
	}
	obj, ok := top.(map[string]any)
	if !ok {
		return nil, format, fmt.Errorf("%s: expected a mapping of stages (like {\"dev\": {...}}), got %s", path, describe(top))
	}
	stages := map[string]map[string]any{}
	for name, v := range obj {
		s, ok := v.(map[string]any)
		if !ok {
			return nil, format, fmt.Errorf("%s: stage %q: expected a mapping of settings, got %s", path, name, describe(v))
		}
		stages[name] = s
	}
	if len(stages) == 0 {
		return nil, format, fmt.Errorf("%s: no stages; Zappa settings look like {\"dev\": {\"app_function\": \"app.app\"}}", path)
	}
	return stages, format, nil
}

// decodeJSON reads strict JSON first, for its exact error positions, then
// Hjson, which Zappa uses for .json files: a file with comments or a
// missing comma deploys with Zappa, so it imports here too.
func decodeJSON(path string, data []byte) (any, Format, error) {
	var top any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keeps 3 and 3.5 apart, so integers can be checked
	jerr := dec.Decode(&top)
	if jerr == nil && dec.More() {
		line, col := lineCol(data, dec.InputOffset())
		jerr = fmt.Errorf("%s:%d:%d: unexpected data after the settings object", path, line, col)
	} else if jerr != nil {
		jerr = jsonErr(path, data, dec, jerr)
	}
	if jerr == nil {
		return top, JSON, nil
	}
	var h any
	opt := hjson.DefaultDecoderOptions()
	opt.UseJSONNumber = true
	opt.DisallowDuplicateKeys = false
	if herr := hjson.UnmarshalWithOptions(data, &h, opt); herr != nil {
		return nil, JSON, fmt.Errorf("%w (Zappa's Hjson reading fails too: %v)", jerr, herr)
	}
	return plain(h), HJSON, nil
}

// jsonErr turns a decoding error into file:line:col: message.
func jsonErr(path string, data []byte, dec *json.Decoder, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := lineCol(data, syn.Offset)
		return fmt.Errorf("%s:%d:%d: invalid JSON: %s", path, line, col, syn.Error())
	case errors.As(err, &typ):
		line, col := lineCol(data, typ.Offset)
		return fmt.Errorf("%s:%d:%d: invalid JSON: %s", path, line, col, typ.Error())
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		// The position just past the last byte: where more was expected.
		line, col := lineCol(data, int64(len(data)))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			col++
		}
		return fmt.Errorf("%s:%d:%d: invalid JSON: unexpected end of file", path, line, col)
	}
	line, col := lineCol(data, dec.InputOffset())
	return fmt.Errorf("%s:%d:%d: invalid JSON: %w", path, line, col, err)
}

// lineCol converts a byte offset into a 1-based line and column. JSON's
// offsets point just past the offending byte, so the column names it.
func lineCol(data []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, max(col, 1)
}

func decodeTOML(path string, data []byte) (any, error) {
	var top map[string]any
	if _, err := toml.Decode(string(data), &top); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d:%d: invalid TOML: %s", path, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		return nil, fmt.Errorf("%s: invalid TOML: %w", path, err)
	}
	return plain(top), nil
}

// decodeYAML reads YAML as PyYAML's safe_load does (YAML 1.1): yes/no/on/off
// are booleans there, so `keep_warm: no` means false, as it did for Zappa.
func decodeYAML(path string, data []byte) (any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: invalid YAML: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if doc.Kind == 0 {
		return nil, fmt.Errorf("%s: empty file; Zappa settings look like \"dev: {app_function: app.app}\"", path)
	}
	yaml11Bools(&doc, map[*yaml.Node]bool{})
	var top any
	if err := doc.Decode(&top); err != nil {
		return nil, fmt.Errorf("%s: invalid YAML: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return plain(top), nil
}

// yaml11Bools retags the plain scalars YAML 1.1 reads as booleans.
func yaml11Bools(n *yaml.Node, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	if n.Kind == yaml.ScalarNode && n.Style == 0 && n.ShortTag() == "!!str" {
		switch n.Value {
		case "yes", "Yes", "YES", "on", "On", "ON":
			n.Tag, n.Value = "!!bool", "true"
		case "no", "No", "NO", "off", "Off", "OFF":
			n.Tag, n.Value = "!!bool", "false"
		}
	}
	for _, c := range n.Content {
		yaml11Bools(c, seen)
	}
	yaml11Bools(n.Alias, seen)
}

// plain converts what a decoder produced into JSON's value types.
func plain(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = plain(x)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[fmt.Sprint(k)] = plain(x)
		}
		return out
	case *hjson.OrderedMap:
		out := make(map[string]any, t.Len())
		for _, k := range t.Keys {
			out[k] = plain(t.Map[k])
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = plain(x)
		}
		return out
	case []map[string]any: // a TOML array of tables
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = plain(x)
		}
		return out
	case int:
		return json.Number(strconv.Itoa(t))
	case int64:
		return json.Number(strconv.FormatInt(t, 10))
	case uint64:
		return json.Number(strconv.FormatUint(t, 10))
	case float64:
		return json.Number(strconv.FormatFloat(t, 'g', -1, 64))
	case time.Time:
		return dateTime(t.Format(time.RFC3339Nano))
	}
	return v
}

// dateTime is a TOML or YAML date: a value of its own kind in Python too
// (datetime), so not a string where Zappa wants one.
type dateTime string
