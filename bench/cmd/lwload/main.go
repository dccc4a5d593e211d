// Command lwload invokes a Lambda function with aws-sdk-go-v2's client in
// a closed loop at concurrency 1 for a while and prints p50/p99 and its own
// CPU per call: a load to profile Stoke or AWS's emulator under.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sort"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

const echoEvent = `{"version":"2.0","routeKey":"$default","rawPath":"/echo/bench","rawQueryString":"x=1",` +
	`"headers":{"accept-encoding":"gzip","host":"127.0.0.1","user-agent":"Go-http-client/1.1"},` +
	`"queryStringParameters":{"x":"1"},"requestContext":{"accountId":"000000000000","apiId":"stoke",` +
	`"domainName":"127.0.0.1","domainPrefix":"127","http":{"method":"GET","path":"/echo/bench",` +
	`"protocol":"HTTP/1.1","sourceIp":"127.0.0.1","userAgent":"Go-http-client/1.1"},` +
	`"requestId":"bench","routeKey":"$default","stage":"$default","time":"26/Nov/2026:06:00:00 +0000",` +
	`"timeEpoch":1795672800000},"isBase64Encoded":false}`

func main() {
	endpoint := flag.String("e", "", "endpoint")
	fn := flag.String("f", "echo", "function")
	n := flag.Int("n", 2000, "invokes")
	flag.Parse()
	cl := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(*endpoint),
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	ctx := context.Background()
	for range 200 {
		if _, err := cl.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(*fn), Payload: []byte(echoEvent)}); err != nil {
			log.Fatal(err)
		}
	}
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	lat := make([]time.Duration, 0, *n)
	t0 := time.Now()
	for range *n {
		t := time.Now()
		out, err := cl.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(*fn), Payload: []byte(echoEvent)})
		if err != nil || out.FunctionError != nil {
			log.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	el := time.Since(t0)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("n=%d p50=%v p90=%v p99=%v rps=%.0f client-cpu/req=%v\n", *n, lat[*n/2].Round(time.Microsecond),
		lat[*n*9/10].Round(time.Microsecond), lat[*n*99/100].Round(time.Microsecond), float64(*n)/el.Seconds(), cpu/time.Duration(*n))
}
