package gateway

import (
	"context"
	"sync"
	"time"
)

// waitCtx is the context a request waits for an instance in: the
// request's, ending at the gateway deadline with errGatewayTimeout as the
// cause. Most requests find an instance idle and never wait, so the
// timerCtx behind it (a timer, a registration with the request's context,
// and undoing both) is made only once something waits on Done, or asks for
// Err after the deadline or the request's end. Until then Value is the
// request's: context.Cause finds the request's cause, which is what the
// timerCtx would report before either ended.
//
// The invocation itself runs in a context of its own, derived from the
// request's with one deadline, the earlier of the gateway's and the
// function's (invokeDeadline): one timer per warm request instead of one
// per layer.
type waitCtx struct {
	parent   context.Context
	deadline time.Time

	mu     sync.Mutex
	timed  context.Context // the timerCtx, once made
	cancel context.CancelFunc
}

func newWaitCtx(parent context.Context, deadline time.Time) *waitCtx {
	return &waitCtx{parent: parent, deadline: deadline}
}

// made returns the timerCtx if it exists.
func (c *waitCtx) made() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timed
}

// make returns the timerCtx, making it the first time.
func (c *waitCtx) make() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timed == nil {
		c.timed, c.cancel = context.WithDeadlineCause(c.parent, c.deadline, errGatewayTimeout)
	}
	return c.timed
}

// stop releases the timer, if one was made.
func (c *waitCtx) stop() {
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (c *waitCtx) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *waitCtx) Done() <-chan struct{} { return c.make().Done() }

func (c *waitCtx) Err() error {
	if t := c.made(); t != nil {
		return t.Err()
	}
	if c.parent.Err() != nil || !time.Now().Before(c.deadline) {
		// Made now, it is done at once, with the request's cause or
		// errGatewayTimeout, as it would have been all along.
		return c.make().Err()
	}
	return nil
}

func (c *waitCtx) Value(key any) any {
	if t := c.made(); t != nil {
		return t.Value(key)
	}
	return c.parent.Value(key)
}

// invokeDeadline is when an invocation starting at start ends, and why:
// the function's timeout, or the gateway's deadline if that comes first.
func invokeDeadline(start, gateway time.Time, timeout time.Duration) (time.Time, error) {
	if d := start.Add(timeout); !gateway.Before(d) {
		return d, errFunctionTimeout
	}
	return gateway, errGatewayTimeout
}
