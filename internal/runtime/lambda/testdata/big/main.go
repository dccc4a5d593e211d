// Command big returns a response of {"n": bytes} bytes (a JSON string).
package main

import (
	"context"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ctx context.Context, in struct{ N int }) (string, error) {
	return strings.Repeat("x", in.N), nil
}

func main() { lambda.Start(handler) }
