// Command fail returns an error from every invocation.
package main

import (
	"context"
	"errors"

	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ctx context.Context) (string, error) {
	return "", errors.New("something went wrong")
}

func main() { lambda.Start(handler) }
