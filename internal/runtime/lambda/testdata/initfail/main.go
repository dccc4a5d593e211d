// Command initfail fails during init, before it ever asks for an event.
package main

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	log.Fatal("init: cannot open config.json")
	lambda.Start(func(ctx context.Context) error { return nil })
}
