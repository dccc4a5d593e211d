package zappa

import (
	"fmt"
	"sort"
	"strings"
)

func stageNames(stages map[string]map[string]any) string {
	names := make([]string, 0, len(stages))
	for n := range stages {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// pickStage returns want, or the only stage when want is empty.
func pickStage(path string, stages map[string]map[string]any, want string) (string, error) {
	if want != "" {
		if _, ok := stages[want]; !ok {
			return "", fmt.Errorf("%s has no stage %q; stages: %s", path, want, stageNames(stages))
		}
		return want, nil
	}
	if len(stages) == 1 {
		for name := range stages {
			return name, nil
		}
	}
	return "", fmt.Errorf("%s has %d stages (%s); choose one with --stage", path, len(stages), stageNames(stages))
}

// resolveExtends applies Zappa's extends: the stage's keys over its
// parent's, recursively. Like Zappa, the merge is shallow: a stage that sets
// environment_variables replaces its parent's whole map; and an empty
// extends ("" or null) ends the chain.
func resolveExtends(path string, stages map[string]map[string]any, stage string) (map[string]any, error) {
	chain := []string{stage}
	for cur := stage; ; {
		v, ok := stages[cur]["extends"]
		if !ok || v == nil || v == "" {
			break
		}
		parent, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s: stage %q: extends must be a stage name, got %s", path, cur, describe(v))
		}
		if _, ok := stages[parent]; !ok {
			return nil, fmt.Errorf("%s: stage %q extends %q, which is not a stage; stages: %s", path, cur, parent, stageNames(stages))
		}
		for _, seen := range chain {
			if seen == parent {
				return nil, fmt.Errorf("%s: extends cycle: %s → %s", path, strings.Join(chain, " → "), parent)
			}
		}
		chain = append(chain, parent)
		cur = parent
	}
	merged := map[string]any{}
	for i := len(chain) - 1; i >= 0; i-- {
		for k, v := range stages[chain[i]] {
			merged[k] = v
		}
	}
	delete(merged, "extends")
	return merged, nil
}
