package cluster

import "strings"

// redact replaces secret in s.
func redact(s, secret string) string { return strings.ReplaceAll(s, secret, "[redacted]") }
