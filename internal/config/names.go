package config

import "regexp"

// The names config accepts, for other packages that write configs
// (internal/zappa) to check theirs the same way.

var (
	envNameRe    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	regionRe     = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	pyDottedRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
	reservedEnvs = map[string]bool{
		"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
		"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
		"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
		"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
		"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
		"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
	}
)

// ValidEnvName says whether name may be an env key.
func ValidEnvName(name string) bool { return envNameRe.MatchString(name) }

// ReservedEnv says whether name is one of the variables Lambda sets itself
// and refuses in a function's configuration; Stoke sets them too.
func ReservedEnv(name string) bool { return reservedEnvs[name] }

// ValidRegion says whether s looks like an AWS region name (us-east-1).
func ValidRegion(s string) bool { return regionRe.MatchString(s) }

// ValidPythonName says whether s is a dotted Python name (mysite.settings,
// or a single identifier).
func ValidPythonName(s string) bool { return pyDottedRe.MatchString(s) }
