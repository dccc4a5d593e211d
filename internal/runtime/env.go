package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stokehq/stoke/internal/config"
)

// Env returns the whole environment of an instance, in layers: PATH and
// LANG from Stoke's own environment (nothing else of it: it holds Stoke's
// secrets) and HOME=/tmp (an isolated instance's own /tmp; Stoke's HOME is
// not the function's to write), the variables Lambda gives every function,
// the runtime kind's own (extra, e.g. PORT), then the function's env, which
// wins over all of those, and last forced, which nothing overrides (e.g.
// AWS_LAMBDA_RUNTIME_API).
func Env(f *config.Function, version, region, instanceID string, now time.Time, extra, forced []string) []string {
	if version == "" {
		version = "$LATEST"
	}
	if region == "" {
		region = "us-east-1"
	}
	var env []string
	for _, k := range []string{"PATH", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, "HOME=/tmp")
	env = append(env,
		"AWS_LAMBDA_FUNCTION_NAME="+f.Name,
		"AWS_LAMBDA_FUNCTION_VERSION="+version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(f.Memory),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+f.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME="+LogStreamName(version, instanceID, now),
		"AWS_REGION="+region,
		"AWS_DEFAULT_REGION="+region,
		"LAMBDA_TASK_ROOT="+f.Cwd,
		"TZ=:UTC",
	)
	env = append(env, extra...)
	keys := make([]string, 0, len(f.Env))
	for k := range f.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = setEnv(env, k+"="+f.Env[k])
	}
	for _, kv := range forced {
		env = setEnv(env, kv)
	}
	return env
}

// setEnv replaces the variable kv names, or appends it.
func setEnv(env []string, kv string) []string {
	name := kv[:strings.IndexByte(kv, '=')+1]
	if i := slices.IndexFunc(env, func(e string) bool { return strings.HasPrefix(e, name) }); i >= 0 {
		env[i] = kv
		return env
	}
	return append(env, kv)
}

// LogStreamName is the instance's AWS_LAMBDA_LOG_STREAM_NAME, as Lambda
// forms it: 2006/01/02/[version]<32 hex digits>.
func LogStreamName(version, instanceID string, now time.Time) string {
	return now.UTC().Format("2006/01/02") + "/[" + version + "]" + streamID(instanceID)
}

// streamID is the 32 hex digits Lambda puts at the end of a log stream name:
// the instance id itself when it is a UUID, else a digest of it.
func streamID(id string) string {
	s := strings.ToLower(strings.ReplaceAll(id, "-", ""))
	if len(s) == 32 {
		if _, err := hex.DecodeString(s); err == nil {
			return s
		}
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}
