package config

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// allowed lists a table's keys, for "unknown key" messages.
func allowed[T any](table map[string]setter[T]) string {
	names := make([]string, 0, len(table))
	for k := range table {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// suggest names the closest allowed key when the typo is small.
func suggest[T any](name string, table map[string]setter[T]) string {
	best, bestD := "", 3
	for k := range table {
		if d := editDistance(name, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	if best == "" || len(name) < 3 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// closest names the allowed value a mistyped one most likely meant
// (runtime: lamda → lambda), or "" when none is near. Words only: "3.0" is
// one edit from "1.0" without being a typo of it.
func closest(s string, choices []string) string {
	if !strings.ContainsFunc(s, unicode.IsLetter) {
		return ""
	}
	best, bestD := "", 3
	for _, c := range choices {
		d := editDistance(strings.ToLower(s), c)
		if d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	if best == "" || len(s) < 2 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}
