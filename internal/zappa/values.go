package zappa

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// str returns a string key; absent and null are "not set".
func (m *mapper) str(key string) (string, bool, error) {
	v, ok := m.s[key]
	if !ok || v == nil {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, m.errf(key, "expected a string, got %s", describe(v))
	}
	return s, true, nil
}

// integer returns a whole-number key; absent and null are "not set".
func (m *mapper) integer(key string) (int64, bool, error) {
	v, ok := m.s[key]
	if !ok || v == nil {
		return 0, false, nil
	}
	num, ok := v.(json.Number)
	if !ok {
		return 0, false, m.errf(key, "expected a whole number, got %s", describe(v))
	}
	n, err := num.Int64()
	if err != nil {
		// 512.0 is a whole number written as a float; accept it.
		f, ferr := num.Float64()
		if ferr != nil || f != float64(int64(f)) {
			return 0, false, m.errf(key, "expected a whole number, got %s", num)
		}
		n = int64(f)
	}
	return n, true, nil
}

func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return strconv.Quote(t)
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		return t.String()
	case dateTime:
		return "the date " + string(t)
	}
	return fmt.Sprintf("%v", v)
}

// compact renders a value in one short line for notes.
func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return describe(v)
	}
	s := string(b)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// isOff says whether a value asks for nothing: false, null or empty.
func isOff(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case bool:
		return !t
	case string:
		return t == ""
	case []any:
		return len(t) == 0
	case map[string]any:
		return len(t) == 0
	}
	return false
}
