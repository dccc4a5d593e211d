package invokeapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	amzDateFmt   = "20060102T150405Z"
	maxSkew      = 15 * time.Minute
	service      = "lambda"
)

// authHeader is a parsed SigV4 Authorization header.
type authHeader struct {
	AccessKeyID   string
	Date          string // YYYYMMDD of the credential scope
	Region        string
	Service       string
	Terminator    string // aws4_request
	SignedHeaders []string
	Signature     string
}

// parseAuthorization reads
// "AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=HEX".
// The error lists what is missing, in AWS's words.
func parseAuthorization(s string) (authHeader, error) {
	var a authHeader
	alg, rest, _ := strings.Cut(strings.TrimSpace(s), " ")
	if alg != sigAlgorithm {
		return a, fmt.Errorf("Authorization header requires '%s' algorithm.", sigAlgorithm)
	}
	var cred, signed string
	var haveCred, haveSigned, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred, haveCred = v, true
		case "SignedHeaders":
			signed, haveSigned = v, true
		case "Signature":
			a.Signature, haveSig = v, true
		}
	}
	var missing []string
	for _, m := range []struct {
		ok   bool
		name string
	}{{haveCred, "Credential"}, {haveSig, "Signature"}, {haveSigned, "SignedHeaders"}} {
		if !m.ok {
			missing = append(missing, fmt.Sprintf("Authorization header requires '%s' parameter.", m.name))
		}
	}
	if len(missing) > 0 {
		return a, fmt.Errorf("%s Authorization=%s", strings.Join(missing, " "), s)
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[0] == "" {
		return a, fmt.Errorf("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", cred)
	}
	a.AccessKeyID, a.Date, a.Region, a.Service, a.Terminator = scope[0], scope[1], scope[2], scope[3], scope[4]
	if signed != "" {
		a.SignedHeaders = strings.Split(signed, ";")
	}
	return a, nil
}

// authenticator checks SigV4 signatures against the configured keys.
type authenticator struct {
	region  string
	secrets map[string]string // access key id → secret
	now     func() time.Time
	signer  *v4.Signer
}

// check verifies everything about the signature that needs no body: the
// header's form, the key, the date and the credential scope. The caller
// then reads the body and calls verify.
func (au *authenticator) check(r *http.Request) (authHeader, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return authHeader{}, &apiError{status: http.StatusForbidden, typ: "MissingAuthenticationTokenException", msg: "Missing Authentication Token", body: bodyMessage}
	}
	a, err := parseAuthorization(h)
	if err != nil {
		return a, &apiError{status: http.StatusForbidden, typ: "IncompleteSignatureException", msg: err.Error(), body: bodyMessage}
	}
	if _, ok := au.secrets[a.AccessKeyID]; !ok {
		return a, &apiError{status: http.StatusForbidden, typ: "UnrecognizedClientException", msg: "The security token included in the request is invalid.", body: bodyMessage}
	}
	invalid := func(msg string) (authHeader, *apiError) {
		return a, &apiError{status: http.StatusForbidden, typ: "InvalidSignatureException", msg: msg, body: bodyMessage}
	}
	raw := r.Header.Get("X-Amz-Date")
	if raw == "" {
		return a, &apiError{status: http.StatusForbidden, typ: "IncompleteSignatureException",
			msg: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=" + h, body: bodyMessage}
	}
	t, err := time.Parse(amzDateFmt, raw)
	if err != nil {
		return invalid(fmt.Sprintf("Invalid X-Amz-Date '%s': expected the form 20060102T150405Z.", raw))
	}
	now := au.now().UTC()
	switch {
	case t.Before(now.Add(-maxSkew)):
		return invalid(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			raw, now.Add(-maxSkew).Format(amzDateFmt), now.Format(amzDateFmt)))
	case t.After(now.Add(maxSkew)):
		return invalid(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 15 min.)",
			raw, now.Add(maxSkew).Format(amzDateFmt), now.Format(amzDateFmt)))
	case a.Date != raw[:8]:
		return invalid(fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			a.Date, raw[:8], raw))
	case a.Region != au.region:
		return invalid(fmt.Sprintf("Credential should be scoped to a valid region, not '%s'. ", a.Region))
	case a.Service != service:
		return invalid(fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", service))
	case a.Terminator != "aws4_request":
		return invalid(fmt.Sprintf("Credential should be scoped with a valid terminator: 'aws4_request', not '%s'. ", a.Terminator))
	}
	return a, nil
}

// verify recomputes the signature of r (with body) using the SDK's signer
// over exactly the headers the client signed, and compares it in constant
// time. The SDK's signer always signs host and a non-zero content-length
// and never User-Agent or X-Amzn-Trace-Id, so a client that signs
// differently (none of the AWS SDKs does) fails here.
func (au *authenticator) verify(ctx context.Context, r *http.Request, a authHeader, body []byte) *apiError {
	u := *r.URL
	vr := &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: http.Header{}}
	for _, name := range a.SignedHeaders {
		switch name {
		case "host":
		case "content-length":
			vr.ContentLength = int64(len(body))
		default:
			if vs := r.Header.Values(name); len(vs) > 0 {
				vr.Header[http.CanonicalHeaderKey(name)] = vs
			}
		}
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	// A client may state the payload hash; Lambda, unlike S3, has no
	// unsigned payloads, so it must be the body's.
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash {
		return &apiError{status: http.StatusForbidden, typ: "InvalidSignatureException",
			msg: "The provided 'x-amz-content-sha256' header does not match what was computed.", body: bodyMessage}
	}
	t, _ := time.Parse(amzDateFmt, r.Header.Get("X-Amz-Date")) // check parsed it already
	creds := aws.Credentials{AccessKeyID: a.AccessKeyID, SecretAccessKey: au.secrets[a.AccessKeyID]}
	err := au.signer.SignHTTP(ctx, creds, vr, payloadHash, service, au.region, t,
		func(o *v4.SignerOptions) { o.DisableSessionToken = true })
	if err != nil {
		return &apiError{status: http.StatusInternalServerError, typ: "ServiceException", msg: "signing failed: " + err.Error(), body: bodyService}
	}
	want, err := parseAuthorization(vr.Header.Get("Authorization"))
	if err == nil &&
		subtle.ConstantTimeCompare([]byte(want.Signature), []byte(a.Signature)) == 1 &&
		strings.Join(want.SignedHeaders, ";") == strings.Join(a.SignedHeaders, ";") {
		return nil
	}
	return &apiError{status: http.StatusForbidden, typ: "InvalidSignatureException",
		msg:  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
		body: bodyMessage}
}
