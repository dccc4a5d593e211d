package zappa

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SettingsFiles are the names Zappa looks for, in the order it prefers them
// (its get_json_or_yaml_settings): JSON, then TOML, then YAML.
var SettingsFiles = []string{"zappa_settings.json", "zappa_settings.toml", "zappa_settings.yml", "zappa_settings.yaml"}

// Find returns the settings file Zappa would read in dir.
func Find(dir string) (string, error) {
	for _, name := range SettingsFiles {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	where := dir
	if abs, err := filepath.Abs(dir); err == nil {
		where = abs
	}
	return "", fmt.Errorf("no Zappa settings in %s (looked for %s, as Zappa does); run the command in the project's directory or name the file: stoke import zappa path/to/zappa_settings.json",
		where, strings.Join(SettingsFiles, ", "))
}
