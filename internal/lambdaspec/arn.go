package lambdaspec

import (
	"fmt"
	"strings"
)

// FunctionRef is the function an Invoke call's FunctionName and Qualifier
// name.
type FunctionRef struct {
	Name      string
	Qualifier string // "" when none was given
	// Region and Account are set when FunctionName was an ARN (Region only
	// for a full ARN); a server must check they are its own.
	Region, Account string
}

// NameError is a FunctionName or Qualifier that cannot name any function
// (Lambda's 400), as opposed to one naming a function that does not exist.
// Type is Lambda's error type, Message its text.
type NameError struct {
	Type, Message string
}

func (e *NameError) Error() string { return e.Message }

// ParseFunctionRef reads Invoke's FunctionName (a name, name:qualifier, a
// full ARN arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER] or
// a partial ARN ACCOUNT:function:NAME[:QUALIFIER]) and the Qualifier query
// parameter, following Lambda's patterns. Its errors are *NameError.
func ParseFunctionRef(functionName, qualifier string) (FunctionRef, error) {
	invalid := func() (FunctionRef, error) {
		return FunctionRef{}, &NameError{"ValidationException", fmt.Sprintf(
			"1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: "+
				"Member must satisfy regular expression pattern: "+
				`(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?`,
			functionName)}
	}
	if len(functionName) < 1 || len(functionName) > 170 {
		return invalid()
	}
	var t FunctionRef
	parts := strings.Split(functionName, ":")
	switch {
	case parts[0] == "arn":
		if len(parts) < 7 || len(parts) > 8 || !strings.HasPrefix(parts[1], "aws") || parts[2] != "lambda" ||
			!ValidRegion(parts[3]) || !ValidAccountID(parts[4]) || parts[5] != "function" {
			return invalid()
		}
		t.Region, t.Account, parts = parts[3], parts[4], parts[6:]
	case len(parts) >= 3:
		if len(parts) > 4 || !ValidAccountID(parts[0]) || parts[1] != "function" {
			return invalid()
		}
		t.Account, parts = parts[0], parts[2:]
	}
	t.Name = parts[0]
	if !ValidFunctionName(t.Name) {
		return invalid()
	}
	if len(parts) == 2 {
		if !ValidQualifier(parts[1]) {
			return invalid()
		}
		t.Qualifier = parts[1]
	}
	if qualifier != "" {
		if !ValidQualifier(qualifier) {
			return FunctionRef{}, &NameError{"ValidationException", fmt.Sprintf(
				"1 validation error detected: Value '%s' at 'qualifier' failed to satisfy constraint: "+
					`Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)`, qualifier)}
		}
		if t.Qualifier != "" && t.Qualifier != qualifier {
			return FunctionRef{}, &NameError{"InvalidParameterValueException",
				"The derived qualifier from the function name does not match the specified qualifier."}
		}
		t.Qualifier = qualifier
	}
	return t, nil
}

// ARN renders the function's ARN in region and account, with the
// qualifier when there is one.
func (t FunctionRef) ARN(region, account string) string {
	s := FunctionARN(region, account, t.Name)
	if t.Qualifier != "" {
		s += ":" + t.Qualifier
	}
	return s
}

// FunctionARN is a function's unqualified ARN, as Lambda passes it in
// Lambda-Runtime-Invoked-Function-Arn.
func FunctionARN(region, account, name string) string {
	return "arn:aws:lambda:" + region + ":" + account + ":function:" + name
}
