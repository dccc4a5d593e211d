package lambdaspec

import "regexp"

var (
	regionRe     = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	envNameRe    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	reservedEnvs = map[string]bool{
		"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
		"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
		"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
		"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
		"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
		"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
	}
)

// ValidFunctionName says whether s may name a function: 1 to 64 letters,
// digits, - and _.
func ValidFunctionName(s string) bool {
	return len(s) >= 1 && len(s) <= MaxFunctionName && allBytes(s, func(c byte) bool { return isAlnum(c) || c == '-' || c == '_' })
}

// ValidQualifier says whether s may be a version or alias qualifier
// ($LATEST, 7, prod).
func ValidQualifier(s string) bool {
	return len(s) >= 1 && len(s) <= 128 && allBytes(s, func(c byte) bool { return isAlnum(c) || c == '-' || c == '_' || c == '$' })
}

// ValidAccountID says whether s is an AWS account id: 12 digits.
func ValidAccountID(s string) bool {
	return len(s) == 12 && allBytes(s, func(c byte) bool { return c >= '0' && c <= '9' })
}

// ValidRegion says whether s looks like an AWS region name (us-east-1,
// us-gov-west-1).
func ValidRegion(s string) bool { return regionRe.MatchString(s) }

// ValidEnvName says whether name may be a function's environment variable.
func ValidEnvName(name string) bool { return envNameRe.MatchString(name) }

// ReservedEnv says whether name is one of the variables Lambda sets itself
// and refuses in a function's configuration; Stoke sets them too.
func ReservedEnv(name string) bool { return reservedEnvs[name] }

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}
