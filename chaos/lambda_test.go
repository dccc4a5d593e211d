package chaos_test

import (
	"strings"
	"testing"
)

const lambdaFn = `functions:
  fn:
    runtime: lambda
    command: [%[1]s]
    memory: 512
    timeout: 5s
    max_instances: 4
    env: {CHAOS_APP: lambda}
`

// A handler that panics reports its error and then its process exits (what
// aws-lambda-go does). The next invocation must not be handed to that
// dying instance: 20 rounds of {panic, echo}, every echo answered.
func TestLambdaPanicThenEcho(t *testing.T) {
	s := newStoke(t, lambdaFn)
	s.start()
	failed := 0
	for i := range 20 {
		status, fe, body := s.invoke("fn", `{"op":"panic"}`)
		if status != 200 || fe != "Unhandled" || !strings.Contains(body, "panicked on purpose") {
			t.Errorf("round %d: panic: %d %q %s", i, status, fe, body)
		}
		status, fe, body = s.invoke("fn", `{"op":"echo","value":"v"}`)
		if status != 200 || fe != "" || !strings.Contains(body, `"value":"v"`) {
			failed++
			t.Errorf("round %d: echo after a panic: %d %q %s", i, status, fe, body)
		}
	}
	t.Logf("echoes failed: %d of 20", failed)
}
