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

// ShownBuild is the build command as logs, messages and stored versions
// show it: as written, so a value a ${VAR} reference expanded to (a token
// the build needs) is never shown; and with the function's secret env
// values, should the text hold one, Redacted.
func (f *Function) ShownBuild() string {
	s := f.Build
	if f.buildText != "" {
		s = f.buildText
	}
	var secrets []string
	for k := range f.SecretEnv {
		secrets = append(secrets, f.Env[k])
	}
	return string(RedactText([]byte(s), secrets))
}

// RedactBuildOutput is what a build printed, with the values its ${VAR}
// references expanded to and the function's secret env values (a build
// runs with its env) Redacted, as RedactText does (8 bytes or more).
func (f *Function) RedactBuildOutput(out string) string {
	secrets := append([]string(nil), f.buildSecrets...)
	for k := range f.SecretEnv {
		secrets = append(secrets, f.Env[k])
	}
	return string(RedactText([]byte(out), secrets))
}

// Redacted returns a copy of f whose secret env values read Redacted and
// whose build is ShownBuild.
func (f *Function) Redacted() *Function {
	if len(f.SecretEnv) == 0 && f.buildText == "" {
		return f
	}
	g := *f
	g.Build = f.ShownBuild()
	g.Env = make(map[string]string, len(f.Env))
	for k, v := range f.Env {
		if f.SecretEnv[k] {
			v = Redacted
		}
		g.Env[k] = v
	}
	return &g
}
