package main_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// The real stoke binary serving the real examples/lambda-echo, called by the
// real aws-sdk-go-v2 Lambda client, signed, and through an HTTP route.
func TestLambdaFunctionEndToEnd(t *testing.T) {
	stokeBin, _ := build(t)
	dir := t.TempDir()
	lambdaEchoIn(t, dir)
	gw, adm := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "stoke.yaml")
	os.Setenv("STOKE_E2E_SECRET", "s3cr3t")
	os.WriteFile(cfg, []byte(`listen: `+gw+`
admin: {listen: "`+adm+`"}
region: eu-west-2
account_id: "123456789012"
invoke_api:
  auth: sigv4
  credentials:
    - access_key_id: AKIDE2E
      secret_access_key: ${STOKE_E2E_SECRET}
functions:
  echo:
    runtime: lambda
    command: [./lambda-echo]
    memory: 1769
    routes: [/echo/*]
`), 0o644)
	s := startStoke(t, stokeBin, cfg, gw)
	defer s.stop()

	resp, body := s.get("/echo/a%20b?x=1&x=2")
	if resp.StatusCode != 200 || !strings.Contains(body, `"path":"/echo/a%20b"`) || !strings.Contains(body, `"x":"1,2"`) {
		t.Errorf("HTTP route to a lambda function: %d %s", resp.StatusCode, body)
	}

	client := func(secret string) *lambda.Client { return lambdaClient(gw, "AKIDE2E", secret) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, _ := json.Marshal(map[string]any{"version": "2.0", "rawPath": "/direct", "requestContext": map[string]any{"http": map[string]any{"method": "PUT", "path": "/direct"}}})
	out, err := client("s3cr3t").Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:eu-west-2:123456789012:function:echo"), Payload: ev, LogType: types.LogTypeTail})
	if err != nil {
		t.Fatalf("signed invoke: %v", err)
	}
	if out.StatusCode != 200 || out.FunctionError != nil || !bytes.Contains(out.Payload, []byte(`PUT`)) || aws.ToString(out.ExecutedVersion) != "1" {
		t.Errorf("invoke: %d %v %s version %s", out.StatusCode, out.FunctionError, out.Payload, aws.ToString(out.ExecutedVersion))
	}
	if !strings.Contains(decodeB64(aws.ToString(out.LogResult)), "REPORT RequestId: ") {
		t.Errorf("Tail log result: %q", decodeB64(aws.ToString(out.LogResult)))
	}
	_, err = client("wrong").Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: ev})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidSignatureException" {
		t.Errorf("badly signed invoke: want InvalidSignatureException, got %v", err)
	}
	ev2, err := client("s3cr3t").Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: ev, InvocationType: types.InvocationTypeEvent})
	if err != nil || ev2.StatusCode != 202 {
		t.Errorf("Event invoke: %v %+v", err, ev2)
	}
}

func decodeB64(s string) string {
	b, _ := base64.StdEncoding.DecodeString(s)
	return string(b)
}
