package apigw

import (
	"encoding/base64"
	"mime"
	"strings"
	"unicode/utf8"
)

// encodeBody returns the body as the event's body field: as is when it is text, base64 otherwise.
func encodeBody(contentType, contentEncoding string, body []byte) (string, bool) {
	if len(body) == 0 {
		return "", false
	}
	if isText(contentType, contentEncoding) && utf8.Valid(body) {
		return string(body), false
	}
	return base64.StdEncoding.EncodeToString(body), true
}

// isText reports whether a body of this type travels as a JSON string. A compressed body is
// binary whatever its type, as Lambda Web Adapter treats it.
func isText(contentType, contentEncoding string) bool {
	if ce := strings.ToLower(strings.TrimSpace(contentEncoding)); ce != "" && ce != "identity" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt, _, _ = strings.Cut(strings.ToLower(contentType), ";")
		mt = strings.TrimSpace(mt)
	}
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded",
		"application/graphql", "application/yaml", "application/x-yaml", "image/svg+xml":
		return true
	}
	return false
}
