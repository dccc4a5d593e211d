// Command panic panics in its handler.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ctx context.Context) (string, error) {
	panic("handler exploded")
}

func main() { lambda.Start(handler) }
