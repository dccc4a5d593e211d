// Command echo answers each event with the event and what aws-lambda-go
// parsed from the Runtime API's headers. {"sleepMs": N} holds it N ms first;
// {"holdFile": PATH} holds it until PATH exists (or the deadline).
package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func handler(ctx context.Context, event json.RawMessage) (any, error) {
	var in struct {
		SleepMs  int
		HoldFile string
	}
	_ = json.Unmarshal(event, &in)
	time.Sleep(time.Duration(in.SleepMs) * time.Millisecond)
	for in.HoldFile != "" && ctx.Err() == nil {
		if _, err := os.Stat(in.HoldFile); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, _ := ctx.Deadline()
	return map[string]any{
		"event":         event,
		"requestId":     lc.AwsRequestID,
		"arn":           lc.InvokedFunctionArn,
		"deadlineMs":    deadline.UnixMilli(),
		"traceId":       os.Getenv("_X_AMZN_TRACE_ID"),
		"clientContext": lc.ClientContext,
		"identity":      lc.Identity,
		"pid":           os.Getpid(),
	}, nil
}

func main() { lambda.Start(handler) }
