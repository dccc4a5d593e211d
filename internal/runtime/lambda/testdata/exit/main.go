// Command exit exits with status 3 inside its handler.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

func handler(ctx context.Context) (string, error) {
	fmt.Println("exiting mid-invocation")
	os.Exit(3)
	return "", nil
}

func main() { lambda.Start(handler) }
