package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// TestAWSClients points the real aws-sdk-go-v2 Lambda client (its waiters
// included) and Debian's AWS CLI at a real Stoke: an empty Invoke payload,
// the read-only operations, and an operation Stoke does not serve.
func TestAWSClients(t *testing.T) {
	stokeBin, hello := build(t)
	dir := t.TempDir()
	lambdaEchoIn(t, dir)
	copyFile(t, hello, filepath.Join(dir, "hello-bin")) // likewise in its own directory
	gw, adm := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "stoke.yaml")
	os.WriteFile(cfg, []byte(`listen: `+gw+`
admin: {listen: "`+adm+`"}
region: eu-west-2
account_id: "123456789012"
invoke_api:
  auth: sigv4
  credentials:
    - {access_key_id: AKIDAWS, secret_access_key: awssecret}
functions:
  echo:
    runtime: lambda
    command: [./lambda-echo]
    memory: 256
    ephemeral_storage: 1024
    timeout: 5s
  hello:
    runtime: http
    command: [./hello-bin]
    routes: [/hello]
`), 0o644)
	s := startStoke(t, stokeBin, cfg, gw)
	defer s.stop()

	c := lambdaClient(gw, "AKIDAWS", "awssecret")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// No payload: the function gets {}, as on Lambda (not EOF).
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo")})
	if err != nil || out.FunctionError != nil || !strings.Contains(string(out.Payload), `"statusCode":200`) {
		t.Fatalf("invoke without a payload: %v %v %s", err, out.FunctionError, out.Payload)
	}

	// ListFunctions, paged.
	page1, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{MaxItems: aws.Int32(1)})
	if err != nil || len(page1.Functions) != 1 || aws.ToString(page1.Functions[0].FunctionName) != "echo" || page1.NextMarker == nil {
		t.Fatalf("list-functions page 1: %v %+v", err, page1)
	}
	page2, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{MaxItems: aws.Int32(1), Marker: page1.NextMarker})
	if err != nil || len(page2.Functions) != 1 || aws.ToString(page2.Functions[0].FunctionName) != "hello" || page2.NextMarker != nil {
		t.Fatalf("list-functions page 2: %v %+v", err, page2)
	}
	fc := page1.Functions[0]
	if aws.ToString(fc.FunctionArn) != "arn:aws:lambda:eu-west-2:123456789012:function:echo" || aws.ToInt32(fc.MemorySize) != 256 ||
		aws.ToInt32(fc.Timeout) != 5 || fc.Runtime != types.RuntimeProvidedal2023 || fc.State != types.StateActive ||
		fc.LastUpdateStatus != types.LastUpdateStatusSuccessful || aws.ToString(fc.LastModified) == "" || fc.Environment != nil ||
		fc.EphemeralStorage == nil || aws.ToInt32(fc.EphemeralStorage.Size) != 1024 {
		t.Errorf("echo's configuration: %+v", fc)
	}

	// GetFunction and GetFunctionConfiguration, by name and by ARN.
	gf, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("arn:aws:lambda:eu-west-2:123456789012:function:hello")})
	if err != nil || aws.ToString(gf.Configuration.FunctionName) != "hello" || aws.ToString(gf.Configuration.Version) != "$LATEST" ||
		gf.Configuration.EphemeralStorage == nil || aws.ToInt32(gf.Configuration.EphemeralStorage.Size) != 512 {
		t.Fatalf("get-function: %v %+v", err, gf)
	}
	gc, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("echo"), Qualifier: aws.String("1")})
	if err != nil || aws.ToString(gc.Version) != "1" || !strings.HasSuffix(aws.ToString(gc.FunctionArn), ":echo:1") {
		t.Fatalf("get-function-configuration: %v %+v", err, gc)
	}
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("nope")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("get-function of an unknown function: %v", err)
	}

	// The SDK's waiters, as deploy tools run them before invoking.
	for name, wait := range map[string]func() error{
		"FunctionExists": func() error {
			return lambda.NewFunctionExistsWaiter(c).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("echo")}, 10*time.Second)
		},
		"FunctionActiveV2": func() error {
			return lambda.NewFunctionActiveV2Waiter(c).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("echo")}, 10*time.Second)
		},
		"FunctionUpdatedV2": func() error {
			return lambda.NewFunctionUpdatedV2Waiter(c).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("echo")}, 10*time.Second)
		},
		"FunctionActive": func() error {
			return lambda.NewFunctionActiveWaiter(c).Wait(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("hello")}, 10*time.Second)
		},
		"FunctionUpdated": func() error {
			return lambda.NewFunctionUpdatedWaiter(c).Wait(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("hello")}, 10*time.Second)
		},
	} {
		if err := wait(); err != nil {
			t.Errorf("waiter %s: %v", name, err)
		}
	}

	// Another operation: refused in Lambda's shape, saying what Stoke serves.
	_, err = c.ListLayers(ctx, &lambda.ListLayersInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnsupportedOperationException" ||
		!strings.Contains(ae.ErrorMessage(), "Stoke serves only these Lambda operations: Invoke, ListFunctions, GetFunction and GetFunctionConfiguration; ListLayers is not one of them") {
		t.Errorf("list-layers: %v", err)
	}
	_, err = c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("echo")})
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnsupportedOperationException" || !strings.Contains(ae.ErrorMessage(), "DeleteFunction is not one of them") {
		t.Errorf("delete-function: %v", err)
	}
	if _, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("echo")}); err != nil {
		t.Errorf("echo is gone after a refused delete: %v", err)
	}
	// Unsigned: refused before anything else.
	anon := lambdaClient(gw, "AKIDAWS", "wrong")
	if _, err := anon.ListFunctions(ctx, &lambda.ListFunctionsInput{}); !errors.As(err, &ae) || ae.ErrorCode() != "InvalidSignatureException" {
		t.Errorf("list-functions with a wrong secret: %v", err)
	}

	awsCLI(t, gw)
}

// lambdaClient is aws-sdk-go-v2's Lambda client for Stoke at gw (region
// eu-west-2), signing with the key given, with no retries to hide a failure.
func lambdaClient(gw, keyID, secret string) *lambda.Client {
	return lambda.New(lambda.Options{Region: "eu-west-2", BaseEndpoint: aws.String("http://" + gw),
		Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, ""), Retryer: aws.NopRetryer{}})
}

// awsCLI runs Debian's AWS CLI (v2, /usr/bin/aws) as docs/lambda.md shows.
// .ci/run installs it; STOKE_SKIP_AWSCLI=1 skips this part explicitly.
func awsCLI(t *testing.T, gw string) {
	bin := "/usr/bin/aws"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("STOKE_SKIP_AWSCLI") == "1" {
			t.Log("STOKE_SKIP_AWSCLI=1: not running the AWS CLI")
			return
		}
		t.Fatal("Debian's AWS CLI is not installed (/usr/bin/aws): run .ci/run (apt-get install -y awscli), or set STOKE_SKIP_AWSCLI=1")
	}
	home := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"--endpoint-url", "http://" + gw, "--region", "eu-west-2", "--no-cli-pager"}, args...)...)
		cmd.Dir = home
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "AWS_ACCESS_KEY_ID=AKIDAWS", "AWS_SECRET_ACCESS_KEY=awssecret",
			"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
			"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// As docs/lambda.md shows it: no --payload.
	out, err := run("lambda", "invoke", "--function-name", "echo", "out.json")
	if err != nil || !strings.Contains(out, `"StatusCode": 200`) || strings.Contains(out, "FunctionError") {
		t.Errorf("aws lambda invoke: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "out.json")); !strings.Contains(string(b), `"statusCode":200`) {
		t.Errorf("aws lambda invoke wrote %s", b)
	}
	out, err = run("lambda", "list-functions")
	var lf struct {
		Functions []struct{ FunctionName, Runtime, State string }
	}
	if err != nil || json.Unmarshal([]byte(out), &lf) != nil || len(lf.Functions) != 2 || lf.Functions[0].State != "Active" {
		t.Errorf("aws lambda list-functions: %v\n%s", err, out)
	}
	if out, err := run("lambda", "get-function", "--function-name", "hello"); err != nil || !strings.Contains(out, `"FunctionName": "hello"`) {
		t.Errorf("aws lambda get-function: %v\n%s", err, out)
	}
	if out, err := run("lambda", "wait", "function-active-v2", "--function-name", "echo"); err != nil {
		t.Errorf("aws lambda wait function-active-v2: %v\n%s", err, out)
	}
	out, err = run("lambda", "list-layers")
	if err == nil || !strings.Contains(out, "An error occurred (UnsupportedOperationException) when calling the ListLayers operation") ||
		!strings.Contains(out, "Stoke serves only these Lambda operations: Invoke, ListFunctions, GetFunction and GetFunctionConfiguration") {
		t.Errorf("aws lambda list-layers: %v\n%s", err, out)
	}
}
