package gateway

import (
	"strings"

	"github.com/stokehq/stoke/internal/config"
)

// table is an immutable route table; Set swaps in a new one. Exact routes
// are looked up in a map; the prefix routes are tried in turn, with
// config.Match so routing means what validation checked. Config forbids
// overlapping routes, so at most one matches and order does not matter.
type table struct {
	byName   map[string]*Function
	exact    map[string]*Function
	prefixes []prefixRoute
}

type prefixRoute struct {
	pattern string
	fn      *Function
}

func newTable(fns []*Function) *table {
	t := &table{byName: map[string]*Function{}, exact: map[string]*Function{}}
	for _, fn := range fns {
		t.byName[fn.Name] = fn
		for _, r := range fn.Routes {
			if strings.HasSuffix(r, "*") {
				t.prefixes = append(t.prefixes, prefixRoute{r, fn})
			} else {
				t.exact[r] = fn
			}
		}
	}
	return t
}

func (t *table) match(path string) *Function {
	if fn := t.exact[path]; fn != nil {
		return fn
	}
	for _, p := range t.prefixes {
		if config.Match(p.pattern, path) {
			return p.fn
		}
	}
	return nil
}
