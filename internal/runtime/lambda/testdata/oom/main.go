// Command oom allocates (and touches) 300 MB, more than its 128 MB limit.
package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"
)

var hold [][]byte

func handler(ctx context.Context) (string, error) {
	for range 300 {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		hold = append(hold, b)
	}
	return fmt.Sprintf("survived %d MB", len(hold)), nil
}

func main() { lambda.Start(handler) }
