// Command apiv1 is an API Gateway REST API (payload 1.0) function: it
// answers 202 with what it received, repeated headers and two cookies, and
// a binary body when asked with ?binary=1.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	if req.QueryStringParameters["binary"] == "1" {
		return events.APIGatewayProxyResponse{
			StatusCode:      200,
			Headers:         map[string]string{"Content-Type": "image/png"},
			Body:            base64.StdEncoding.EncodeToString([]byte{0x89, 'P', 'N', 'G', 0}),
			IsBase64Encoded: true,
		}, nil
	}
	body := req.Body
	if req.IsBase64Encoded {
		b, _ := base64.StdEncoding.DecodeString(body)
		body = string(b)
	}
	out, _ := json.Marshal(map[string]any{
		"method": req.HTTPMethod, "path": req.Path, "query": req.MultiValueQueryStringParameters,
		"headers": req.MultiValueHeaders, "body": body, "requestId": req.RequestContext.RequestID,
	})
	return events.APIGatewayProxyResponse{
		StatusCode: 202,
		Headers:    map[string]string{"Content-Type": "application/json"},
		MultiValueHeaders: map[string][]string{
			"X-Multi":    {"x", "y"},
			"Set-Cookie": {"a=1; Path=/", "b=2"},
		},
		Body: string(out),
	}, nil
}

func main() { lambda.Start(handler) }
