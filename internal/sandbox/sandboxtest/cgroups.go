package sandboxtest

import (
	"os"
	"testing"
)

// RequireCgroups is whether tests that need root and cgroups must fail
// rather than skip without them: STOKE_REQUIRE_CGROUPS=1, which .ci/run
// sets, so a check cannot pass in CI by not running (as the browser tests
// fail without Chromium unless STOKE_SKIP_BROWSER=1).
func RequireCgroups() bool { return os.Getenv("STOKE_REQUIRE_CGROUPS") == "1" }

// SkipWithoutCgroups skips t, saying why, when cgroups are not usable; it
// fails t instead under STOKE_REQUIRE_CGROUPS=1.
func SkipWithoutCgroups(t testing.TB, why string) {
	t.Helper()
	if RequireCgroups() {
		t.Fatalf("STOKE_REQUIRE_CGROUPS=1, but %s", why)
	}
	t.Skip(why)
}

// LeftOutWithoutCgroups says in t's log that a check was left out because
// cgroups are not usable; it fails t instead under STOKE_REQUIRE_CGROUPS=1.
func LeftOutWithoutCgroups(t testing.TB, what string) {
	t.Helper()
	if RequireCgroups() {
		t.Errorf("STOKE_REQUIRE_CGROUPS=1, but cgroups are not usable: %s not checked", what)
		return
	}
	t.Logf("cgroups not usable here: %s not checked", what)
}
