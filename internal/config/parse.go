package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stokehq/stoke/internal/lambdaspec"
)

// DefaultBilling is Lambda's pricing (x86, us-east-1, first tier) at 1 ms
// granularity, with init billed as since 2025-08-01.
var DefaultBilling = Billing{
	Granularity:              time.Millisecond,
	PricePerGBSecond:         0.0000166667,
	PricePerRequest:          0.0000002,
	BillInit:                 true,
	KeepWarmPricePerGBSecond: 0.0000041667,
}

// Parse parses and validates a config file's contents. path is used in
// messages and to resolve relative paths; it need not exist. On any problem
// Parse returns a nil *Config and an Errors listing every problem found.
func Parse(path string, data []byte) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config path %s: %w", path, err)
	}
	p := &parser{file: path, dir: filepath.Dir(abs), lookup: os.LookupEnv}
	cfg := &Config{
		Path:      abs,
		Listen:    "127.0.0.1:8080",
		Admin:     Admin{Listen: "127.0.0.1:8081"},
		DataDir:   filepath.Join(p.dir, ".stoke"),
		Gateway:   Gateway{Timeout: 30 * time.Second, QueueSize: 100, MaxBodyBytes: lambdaspec.MaxSyncPayload},
		Billing:   DefaultBilling,
		Region:    "us-east-1",
		AccountID: "000000000000",
		InvokeAPI: InvokeAPI{Auth: "sigv4"},
		Sandbox:   DefaultSandbox,
		Functions: map[string]*Function{},
	}
	root := p.decode(data)
	if root != nil {
		p.present = walk(p, root, "", topKeys, cfg)
	}
	if cfg.Cluster != nil && cfg.Cluster.Artifacts == "" {
		cfg.Cluster.Artifacts = artifactsDir(cfg.DataDir)
	}
	p.crossChecks(cfg)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	cfg.Warnings = p.warns
	return cfg, nil
}

// parser collects every problem in one file rather than stopping at the
// first, so a user fixes the file in one pass.
type parser struct {
	file    string // as the user gave it, so messages read like their command line
	dir     string // absolute directory of the file
	lookup  func(string) (string, bool)
	errs    Errors
	warns   []string
	present map[string]*yaml.Node // top-level keys set in the file
	fns     []*fnState            // in file order
	// expanded collects the values ${VAR} references expanded to, for a
	// key that keeps them (build: secrets.go)
	expanded []string
}

// fnState is a function being parsed plus where its keys were, for checks
// that span keys or functions.
type fnState struct {
	fn      *Function
	key     string // functions.<name>
	node    *yaml.Node
	present map[string]*yaml.Node
	routes  []routeRef
}

type routeRef struct {
	pattern string
	line    int
	key     string
}
