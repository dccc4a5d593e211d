package config

import "bytes"

// Redacted replaces a secret wherever Stoke stores or shows a config.
const Redacted = "[redacted]"

// Secrets are the values Stoke must never store or show in clear: the
// admin token, the Invoke API's secret keys, the cluster secret and every env value that came
// from a ${VAR} reference.
func (c *Config) Secrets() []string {
	var out []string
	if c.Admin.Token != "" {
		out = append(out, c.Admin.Token)
	}
	if c.Cluster != nil && c.Cluster.Secret != "" {
		out = append(out, c.Cluster.Secret)
	}
	for _, cr := range c.InvokeAPI.Credentials {
		out = append(out, cr.SecretAccessKey)
	}
	for _, f := range c.Functions {
		for k := range f.SecretEnv {
			if v := f.Env[k]; v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// RedactText replaces every occurrence of each secret in b (a config
// file's text, say) with Redacted. Secrets shorter than 8 bytes are left:
// replacing them would mangle unrelated text, and the file's ${VAR}
// references hold no values anyway; literal secrets in a file are the
// admin token (32 bytes or more) and secret keys.
func RedactText(b []byte, secrets []string) []byte {
	for _, s := range secrets {
		if len(s) >= 8 {
			b = bytes.ReplaceAll(b, []byte(s), []byte(Redacted))
		}
	}
	return b
}

// Redacted returns a copy of f whose secret env values read Redacted.
func (f *Function) Redacted() *Function {
	if len(f.SecretEnv) == 0 {
		return f
	}
	g := *f
	g.Env = make(map[string]string, len(f.Env))
	for k, v := range f.Env {
		if f.SecretEnv[k] {
			v = Redacted
		}
		g.Env[k] = v
	}
	return &g
}
