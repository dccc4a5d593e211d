// Command apiv2 is an API Gateway HTTP API (payload 2.0) function: it
// answers 201 with what it received, two cookies, a repeated header, and
// a binary body when asked with ?binary=1.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if req.QueryStringParameters["binary"] == "1" {
		return events.APIGatewayV2HTTPResponse{
			StatusCode:      200,
			Headers:         map[string]string{"Content-Type": "application/octet-stream"},
			Body:            base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff, 0xfe}),
			IsBase64Encoded: true,
		}, nil
	}
	body := req.Body
	if req.IsBase64Encoded {
		b, _ := base64.StdEncoding.DecodeString(body)
		body = string(b)
	}
	out, _ := json.Marshal(map[string]any{
		"version": req.Version, "method": req.RequestContext.HTTP.Method, "path": req.RawPath,
		"query": req.RawQueryString, "headers": req.Headers, "cookies": req.Cookies, "body": body,
		"requestId": req.RequestContext.RequestID,
	})
	return events.APIGatewayV2HTTPResponse{
		StatusCode: 201,
		Headers:    map[string]string{"Content-Type": "application/json", "X-Fn": "v2"},
		Cookies:    []string{"a=1; Path=/", "b=2"},
		Body:       string(out),
	}, nil
}

func main() { lambda.Start(handler) }
