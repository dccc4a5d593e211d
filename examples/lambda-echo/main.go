// Command lambda-echo is a Lambda function written for API Gateway's HTTP
// API, unchanged from what would be deployed to AWS: it echoes the request
// it was given (method, path, query, headers, cookies, body) as JSON. Run it
// under Stoke with runtime: lambda; HTTP routes reach it as payload 2.0
// events.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

type echo struct {
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Query     map[string]string `json:"query"`
	Headers   map[string]string `json:"headers"`
	Cookies   []string          `json:"cookies"`
	Body      string            `json:"body"`
	RequestID string            `json:"requestId"`
}

func handler(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	body := req.Body
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		body = string(b)
	}
	out, err := json.Marshal(echo{
		Method:    req.RequestContext.HTTP.Method,
		Path:      req.RawPath,
		Query:     req.QueryStringParameters,
		Headers:   req.Headers,
		Cookies:   req.Cookies,
		Body:      body,
		RequestID: req.RequestContext.RequestID,
	})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: 200,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(out),
	}, nil
}

func main() { lambda.Start(handler) }
