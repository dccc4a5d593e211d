package pool_test

import (
	"testing"

	"github.com/stokehq/stoke/internal/pool"
)

// Idle is true only while an instance is ready and free: not before the
// first start, not while the only instance is busy, not once it was reaped.
func TestIdle(t *testing.T) {
	p := newEnv(t).pool(pool.Options{MaxInstances: 1, IdleTimeout: 50e6})
	if p.Idle() {
		t.Fatal("idle before any instance")
	}
	l := acquire(t, p)
	if p.Idle() {
		t.Fatal("idle while the only instance is busy")
	}
	l.Release()
	if !p.Idle() {
		t.Fatal("not idle with a free instance")
	}
	waitFor(t, "the idle instance to be reaped", func() bool { return len(p.Instances()) == 0 })
	if p.Idle() {
		t.Fatal("idle after the instance was reaped")
	}
}
