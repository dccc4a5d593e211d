package lambdaspec

import (
	"errors"
	"testing"
)

// The seed corpus is also committed under testdata/fuzz/.

func FuzzParseFunctionRef(f *testing.F) {
	for _, s := range [][2]string{
		{"web", ""}, {"web:1", ""}, {"web", "$LATEST"}, {"web:1", "2"},
		{"arn:aws:lambda:us-east-1:000000000000:function:web", ""},
		{"arn:aws:lambda:us-east-1:000000000000:function:web:$LATEST", "$LATEST"},
		{"arn:aws-cn:lambda:cn-north-1:123456789012:function:my-fn_2:prod", ""},
		{"000000000000:function:web", ""}, {"000000000000:function:web:7", "7"},
		{"arn:aws:lambda:us-east-1:000000000000:layer:x", ""}, {"a:b:c:d:e", ""}, {":", ""}, {"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, qualifier string) {
		tg, err := ParseFunctionRef(name, qualifier)
		if err != nil {
			if _, ok := err.(*NameError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if !ValidFunctionName(tg.Name) || (tg.Qualifier != "" && !ValidQualifier(tg.Qualifier)) ||
			(tg.Account != "" && !ValidAccountID(tg.Account)) || (tg.Region != "" && !ValidRegion(tg.Region)) {
			t.Fatalf("%q %q parsed to invalid %+v", name, qualifier, tg)
		}
		if qualifier != "" && tg.Qualifier != qualifier {
			t.Fatalf("%q %q: qualifier %q", name, qualifier, tg.Qualifier)
		}
		// The ARN it renders parses back to the same function.
		region, account := "us-east-1", "000000000000"
		if tg.Region != "" {
			region = tg.Region
		}
		if tg.Account != "" {
			account = tg.Account
		}
		back, err := ParseFunctionRef(tg.ARN(region, account), "")
		if err != nil || back.Name != tg.Name || back.Qualifier != tg.Qualifier || back.Region != region || back.Account != account {
			t.Fatalf("%q %q → %+v → %q → %+v, %v", name, qualifier, tg, tg.ARN(region, account), back, err)
		}
	})
}

func TestParseFunctionRef(t *testing.T) {
	for _, tt := range []struct {
		name, qualifier string
		want            FunctionRef
		errType         string
	}{
		{name: "web", want: FunctionRef{Name: "web"}},
		{name: "web:7", want: FunctionRef{Name: "web", Qualifier: "7"}},
		{name: "arn:aws:lambda:eu-west-2:123456789012:function:web:$LATEST",
			want: FunctionRef{Name: "web", Qualifier: "$LATEST", Region: "eu-west-2", Account: "123456789012"}},
		{name: "123456789012:function:web", want: FunctionRef{Name: "web", Account: "123456789012"}},
		{name: "web:1", qualifier: "2", errType: "InvalidParameterValueException"},
		{name: "web", qualifier: "a b", errType: "ValidationException"},
		{name: "arn:aws:lambda:local:123456789012:function:web", errType: "ValidationException"},
		{name: "arn:aws:lambda:us-east-1:12345:function:web", errType: "ValidationException"},
		{name: "we.b", errType: "ValidationException"},
		{name: string(make([]byte, 65)), errType: "ValidationException"},
	} {
		got, err := ParseFunctionRef(tt.name, tt.qualifier)
		var ne *NameError
		switch {
		case tt.errType != "" && (!errors.As(err, &ne) || ne.Type != tt.errType):
			t.Errorf("%q %q: err %v, want a %s", tt.name, tt.qualifier, err, tt.errType)
		case tt.errType == "" && (err != nil || got != tt.want):
			t.Errorf("%q %q = %+v, %v; want %+v", tt.name, tt.qualifier, got, err, tt.want)
		}
	}
}

func TestNames(t *testing.T) {
	long := "a123456789b123456789c123456789d123456789e123456789f123456789abcd"
	for _, tt := range []struct {
		f    func(string) bool
		s    string
		want bool
	}{
		{ValidFunctionName, long, true}, {ValidFunctionName, long + "e", false}, {ValidFunctionName, "", false},
		{ValidFunctionName, "my-fn_2", true}, {ValidFunctionName, "my.fn", false},
		{ValidRegion, "us-east-1", true}, {ValidRegion, "us-gov-west-1", true}, {ValidRegion, "local", false},
		{ValidAccountID, "000000000000", true}, {ValidAccountID, "00000000000", false}, {ValidAccountID, "00000000000a", false},
		{ValidQualifier, "$LATEST", true}, {ValidQualifier, "a:b", false},
		{ValidEnvName, "A_1", true}, {ValidEnvName, "1A", false}, {ReservedEnv, "AWS_REGION", true}, {ReservedEnv, "GREETING", false},
	} {
		if got := tt.f(tt.s); got != tt.want {
			t.Errorf("%q: %v, want %v", tt.s, got, tt.want)
		}
	}
}
