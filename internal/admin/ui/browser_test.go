package ui_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// newBrowser starts the headless Chromium at path for t, closed when t
// ends. bctx is the browser's own context (for a failure's last look, when
// ctx may be spent); ctx bounds the test's steps to 2 minutes.
func newBrowser(t *testing.T, path string) (bctx, ctx context.Context) {
	t.Helper()
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancel)
	bctx, cancel = chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancel)
	// The first action starts the browser, which lives as long as that
	// action's context: start it without a deadline, then bound the rest.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	ctx, cancel = context.WithTimeout(bctx, 2*time.Minute)
	t.Cleanup(cancel)
	return bctx, ctx
}
