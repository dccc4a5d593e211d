package invokeapi

import (
	"fmt"
	"strings"
)

// target is the function an Invoke call names.
type target struct {
	Name      string
	Qualifier string // "" when none was given
	// Region and Account are set when FunctionName was an ARN (Region only
	// for a full ARN); they must match the server's.
	Region, Account string
}

// badName is a FunctionName or Qualifier that cannot name any function
// (Lambda's 400), as opposed to one naming a function that does not exist.
type badName struct {
	typ, msg string
}

func (e *badName) Error() string { return e.msg }

// parseTarget reads Invoke's FunctionName (a name, name:qualifier, a full
// ARN arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER] or a
// partial ARN ACCOUNT:function:NAME[:QUALIFIER]) and the Qualifier query
// parameter, following Lambda's patterns.
func parseTarget(functionName, qualifier string) (target, error) {
	invalid := func() (target, error) {
		return target{}, &badName{"ValidationException", fmt.Sprintf(
			"1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: "+
				"Member must satisfy regular expression pattern: "+
				`(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?`,
			functionName)}
	}
	if len(functionName) < 1 || len(functionName) > 170 {
		return invalid()
	}
	var t target
	parts := strings.Split(functionName, ":")
	switch {
	case parts[0] == "arn":
		if len(parts) < 7 || len(parts) > 8 || !strings.HasPrefix(parts[1], "aws") || parts[2] != "lambda" ||
			!validRegion(parts[3]) || !validAccount(parts[4]) || parts[5] != "function" {
			return invalid()
		}
		t.Region, t.Account, parts = parts[3], parts[4], parts[6:]
	case len(parts) >= 3:
		if len(parts) > 4 || !validAccount(parts[0]) || parts[1] != "function" {
			return invalid()
		}
		t.Account, parts = parts[0], parts[2:]
	}
	t.Name = parts[0]
	if !validName(t.Name) {
		return invalid()
	}
	if len(parts) == 2 {
		if !validQualifier(parts[1]) {
			return invalid()
		}
		t.Qualifier = parts[1]
	}
	if qualifier != "" {
		if !validQualifier(qualifier) {
			return target{}, &badName{"ValidationException", fmt.Sprintf(
				"1 validation error detected: Value '%s' at 'qualifier' failed to satisfy constraint: "+
					`Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)`, qualifier)}
		}
		if t.Qualifier != "" && t.Qualifier != qualifier {
			return target{}, &badName{"InvalidParameterValueException",
				"The derived qualifier from the function name does not match the specified qualifier."}
		}
		t.Qualifier = qualifier
	}
	return t, nil
}

// arn renders the function's ARN, with the qualifier when there is one.
func (t target) arn(region, account string) string {
	s := "arn:aws:lambda:" + region + ":" + account + ":function:" + t.Name
	if t.Qualifier != "" {
		s += ":" + t.Qualifier
	}
	return s
}

func validName(s string) bool {
	return len(s) >= 1 && len(s) <= 64 && allBytes(s, func(c byte) bool { return isAlnum(c) || c == '-' || c == '_' })
}

func validQualifier(s string) bool {
	return len(s) >= 1 && len(s) <= 128 && allBytes(s, func(c byte) bool { return isAlnum(c) || c == '-' || c == '_' || c == '$' })
}

func validAccount(s string) bool {
	return len(s) == 12 && allBytes(s, func(c byte) bool { return c >= '0' && c <= '9' })
}

// validRegion is looser than Lambda's pattern: Stoke's region is whatever
// the config says, e.g. "local".
func validRegion(s string) bool {
	return len(s) >= 1 && len(s) <= 32 && allBytes(s, func(c byte) bool { return isAlnum(c) || c == '-' })
}

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
