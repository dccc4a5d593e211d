package cluster

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stokehq/stoke/internal/pool"
	"github.com/stokehq/stoke/internal/runtime"
	"github.com/stokehq/stoke/internal/runtime/httpwire"
)

// The node-to-node HTTP hop: a request claimed on another node goes to
// that node's peer listener, authenticated by a credential derived from
// the cluster secret (nodes only) and naming its reservation's one-time
// token. The receiving node runs it on the reserved instance as its own
// gateway would (the runtime validates it with httpwire first), and says
// who served it.
//
//	POST /_stoke/v1/http/{token}{path}   an HTTP request, as is
//	POST /_stoke/v1/event/{token}        a Lambda event (JSON invocation)
//	POST /_stoke/v1/release/{token}      the request will not come

const (
	peerPrefix = "/_stoke/v1/"
	// Header fields of the hop; a client's own are dropped at the gateway
	// of the receiving node (they only count with the peer credential).
	hdrAuth       = "X-Stoke-Peer-Auth"
	hdrRemoteAddr = "X-Stoke-Peer-Remote-Addr"
	hdrErrType    = "X-Stoke-Peer-Error-Type"
	// hdrNonce is a per-request secret the error fields are prefixed
	// with, so an app's own response fields cannot pose as Stoke's.
	hdrNonce     = "X-Stoke-Peer-Nonce"
	hdrMaxMemory = "X-Stoke-Peer-Max-Memory"
	// HeaderNode names the node that served a response.
	HeaderNode = "X-Stoke-Node"
)

// PeerHandler serves the node-to-node hop.
func (n *Node) PeerHandler() http.Handler {
	want := []byte(derive(n.cfg.Secret, "peer"))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(hdrAuth)), want) != 1 {
			http.Error(w, "not a node of this cluster", http.StatusUnauthorized)
			return
		}
		r.Header.Del(hdrAuth)
		kind, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, peerPrefix), "/")
		tok, path, _ := strings.Cut(rest, "/")
		if !strings.HasPrefix(r.URL.Path, peerPrefix) || r.Method != http.MethodPost && kind != "http" {
			http.NotFound(w, r)
			return
		}
		l := n.claims.take(tok)
		if l == nil {
			http.Error(w, "no such reservation (expired?)", http.StatusGone)
			return
		}
		switch kind {
		case "release":
			l.Release()
			w.WriteHeader(http.StatusNoContent)
		case "http":
			n.serveHTTP(w, r, l, "/"+path)
		case "event":
			n.serveEvent(w, r, l)
		default:
			l.Release()
			http.NotFound(w, r)
		}
	})
}

func (n *Node) serveHTTP(w http.ResponseWriter, r *http.Request, l *pool.Lease, path string) {
	r.URL.Path, r.URL.RawPath = path, ""
	r.RequestURI = ""
	if a := r.Header.Get(hdrRemoteAddr); a != "" {
		r.RemoteAddr = a
	}
	nonce := r.Header.Get(hdrNonce)
	r.Header.Del(hdrRemoteAddr)
	r.Header.Del(hdrNonce)
	w.Header().Set(HeaderNode, n.name)
	// The instance's peak so far: the fields go out before the body.
	w.Header().Set(hdrMaxMemory, strconv.Itoa(l.Instance.MaxMemoryMB()))
	sw := &httpwire.Capture{W: w}
	err := l.Instance.Invoke(sw, r)
	var invalid *httpwire.RequestError
	switch {
	case err == nil:
		l.Release()
		return
	case isRequestError(err, &invalid):
		l.Release()
	default:
		l.Discard()
	}
	if sw.Status == 0 {
		writePeerError(w, nonce, err, l.Instance)
	}
}

func isRequestError(err error, target **httpwire.RequestError) bool {
	e, ok := err.(*httpwire.RequestError)
	if ok {
		*target = e
	}
	return ok
}

// writePeerError sends an invocation's failure back so the claiming
// gateway answers as if the instance were its own.
func writePeerError(w http.ResponseWriter, nonce string, err error, inst runtime.Instance) {
	if e, ok := err.(*httpwire.RequestError); ok {
		w.Header().Set(hdrErrType, nonce+" request")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, e.Reason)
		return
	}
	re := runtime.AsError(err)
	w.Header().Set(hdrErrType, nonce+" "+re.Type)
	w.Header().Set(hdrMaxMemory, strconv.Itoa(inst.MaxMemoryMB()))
	status := re.Status
	if status == 0 {
		status = http.StatusBadGateway
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, re.Message)
}

// eventCall is a Lambda invocation on the hop.
type eventCall struct {
	runtime.Invocation
	Timeout time.Duration `json:"timeout"`
}

type eventAnswer struct {
	Result    *runtime.Result `json:"result,omitempty"`
	ErrType   string          `json:"error_type,omitempty"`
	ErrMsg    string          `json:"error_message,omitempty"`
	ErrStatus int             `json:"error_status,omitempty"`
	MaxMemory int             `json:"max_memory_mb"`
}

func (n *Node) serveEvent(w http.ResponseWriter, r *http.Request, l *pool.Lease) {
	var c eventCall
	if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&c); err != nil {
		l.Release()
		http.Error(w, "bad event call: "+err.Error(), http.StatusBadRequest)
		return
	}
	ei, ok := l.Instance.(runtime.EventInstance)
	if !ok {
		l.Release()
		http.Error(w, "the instance does not take events", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.Timeout)
	defer cancel()
	res, err := ei.InvokeEvent(ctx, &c.Invocation)
	a := eventAnswer{Result: res, MaxMemory: ei.MaxMemoryMB()}
	if err != nil {
		l.Discard()
		re := runtime.AsError(err)
		if ctx.Err() != nil {
			re = &runtime.Error{Type: "timeout", Message: ctx.Err().Error()}
		}
		a.ErrType, a.ErrMsg, a.ErrStatus = re.Type, re.Message, re.Status
	} else {
		l.Release()
	}
	w.Header().Set(HeaderNode, n.name)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a)
}

// peerClient is the hop's HTTP client: kept-alive connections to every
// node, so a hop costs a request, not a handshake.
func (n *Node) peerClient() *http.Client {
	n.peerOnce.Do(func() {
		t := &http.Transport{
			DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		if n.cfg.TLS != nil {
			tc, err := tlsConfig(n.cfg.TLS, false)
			if err != nil {
				n.log.Error("cluster: peer TLS", "err", err)
			} else {
				t.TLSClientConfig = tc
				t.ForceAttemptHTTP2 = false
			}
		}
		n.peerHTTP = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	})
	return n.peerHTTP
}

// PeerTLS is the peer listener's TLS config, nil without cluster.tls.
func (n *Node) PeerTLS() (*tls.Config, error) {
	if n.cfg.TLS == nil {
		return nil, nil
	}
	return tlsConfig(n.cfg.TLS, true)
}

func (n *Node) peerURL(peer, kind, tok string) string {
	scheme := "http"
	if n.cfg.TLS != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s%s%s/%s", scheme, peer, peerPrefix, kind, tok)
}

// remoteLease wraps a claim's answer as a lease on a remote instance.
func (n *Node) remoteLease(a claimAnswer, wait time.Duration) *pool.Lease {
	ri := &remoteInstance{n: n, a: a, done: make(chan struct{})}
	var inst runtime.Instance = ri
	if a.Event {
		inst = &remoteEventInstance{ri}
	}
	return pool.RemoteLease(inst, a.Node+"/"+a.Instance, wait, func(bool) {
		// The other node keeps or stops its instance itself; if the
		// request never went there, free the reservation now.
		if !ri.sent {
			go n.release(a)
		}
	})
}

func (n *Node) release(a claimAnswer) {
	ctx, cancel := context.WithTimeout(n.ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, n.peerURL(a.Peer, "release", a.Token), nil)
	req.Header.Set(hdrAuth, derive(n.cfg.Secret, "peer"))
	if resp, err := n.peerClient().Do(req); err == nil {
		resp.Body.Close()
	}
}

// remoteInstance is an instance on another node, reached over the hop.
type remoteInstance struct {
	n      *Node
	a      claimAnswer
	sent   bool
	maxMem int
	done   chan struct{} // never closed: the other node watches its process
}

func (ri *remoteInstance) Invoke(w http.ResponseWriter, r *http.Request) error {
	if err := httpwire.Validate(r); err != nil {
		return err
	}
	n := ri.n
	u := n.peerURL(ri.a.Peer, "http", ri.a.Token) + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u, body)
	if err != nil {
		return runtime.Errorf("Runtime.Unknown", http.StatusBadGateway, "forwarding to node %s: %v", ri.a.Node, err)
	}
	out.ContentLength = r.ContentLength
	out.Host = r.Host
	httpwire.EachHeader(r.Header, func(k, v string) { out.Header.Add(k, v) })
	nonce := newToken()
	out.Header.Set(hdrAuth, derive(n.cfg.Secret, "peer"))
	out.Header.Set(hdrRemoteAddr, r.RemoteAddr)
	out.Header.Set(hdrNonce, nonce)
	ri.sent = true
	resp, err := n.peerClient().Do(out)
	if err != nil {
		if r.Context().Err() != nil {
			return context.Cause(r.Context())
		}
		return runtime.Errorf("Runtime.Unknown", http.StatusBadGateway, "node %s did not answer: %v", ri.a.Node, err)
	}
	defer resp.Body.Close()
	if typ, ok := strings.CutPrefix(resp.Header.Get(hdrErrType), nonce+" "); ok {
		ri.maxMem, _ = strconv.Atoi(resp.Header.Get(hdrMaxMemory))
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if typ == "request" {
			return &httpwire.RequestError{Reason: string(msg)}
		}
		return &runtime.Error{Type: typ, Message: string(msg), Status: resp.StatusCode}
	}
	ri.maxMem, _ = strconv.Atoi(resp.Header.Get(hdrMaxMemory))
	h := w.Header()
	httpwire.CopyResponseHeader(h, resp.Header)
	h.Del(hdrErrType)
	h.Del(hdrMaxMemory)
	h.Set(HeaderNode, resp.Header.Get(HeaderNode))
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		return http.ErrAbortHandler
	}
	return nil
}

func (ri *remoteInstance) Done() <-chan struct{}       { return ri.done }
func (ri *remoteInstance) Err() error                  { return nil }
func (ri *remoteInstance) Pid() int                    { return 0 }
func (ri *remoteInstance) InitDuration() time.Duration { return 0 }
func (ri *remoteInstance) MaxMemoryMB() int            { return ri.maxMem }
func (ri *remoteInstance) MemoryMB() int               { return 0 }
func (ri *remoteInstance) Stop(context.Context) error  { return nil }

// remoteEventInstance is a remote lambda instance: events go as events.
type remoteEventInstance struct{ *remoteInstance }

func (ri *remoteEventInstance) InvokeEvent(ctx context.Context, inv *runtime.Invocation) (*runtime.Result, error) {
	n := ri.n
	c := eventCall{Invocation: *inv}
	if dl, ok := ctx.Deadline(); ok {
		c.Timeout = time.Until(dl)
	}
	b, _ := json.Marshal(c)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.peerURL(ri.a.Peer, "event", ri.a.Token), bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set(hdrAuth, derive(n.cfg.Secret, "peer"))
	ri.sent = true
	resp, err := n.peerClient().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, runtime.Errorf("Runtime.Unknown", http.StatusBadGateway, "node %s did not answer: %v", ri.a.Node, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, runtime.Errorf("Runtime.Unknown", http.StatusBadGateway, "node %s: %s", ri.a.Node, msg)
	}
	var a eventAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return nil, runtime.Errorf("Runtime.Unknown", http.StatusBadGateway, "node %s: %v", ri.a.Node, err)
	}
	ri.maxMem = a.MaxMemory
	if a.ErrType != "" {
		if a.ErrType == "timeout" && ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, &runtime.Error{Type: a.ErrType, Message: a.ErrMsg, Status: a.ErrStatus}
	}
	return a.Result, nil
}
