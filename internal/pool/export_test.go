package pool

// KeepAliveApplies is how often p's keep-alive loop applied its plan.
func KeepAliveApplies(p *Pool) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ka.applies
}

// Backoff is the wait after the failures-th failed start in a row.
var Backoff = backoff
