// Command sleep works until well past its invocation's deadline.
package main

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ctx context.Context) (string, error) {
	deadline, _ := ctx.Deadline()
	time.Sleep(time.Until(deadline) + 5*time.Second)
	return "too late", nil
}

func main() { lambda.Start(handler) }
