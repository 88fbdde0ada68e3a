package api

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestClientResponseSetTimeout: a client response's SetTimeout callback
// runs once the connection has been idle for its timeout (Node's
// res.setTimeout), once per idle period, and the request's own timeout
// listeners hear it too.
func TestClientResponseSetTimeout(t *testing.T) {
	// The server sends a head and one byte of a chunked body, then nothing.
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) { res.Write([]byte("."), nil) }, quiet())
	host, port := splitAddr(t, listen(t, srv))
	fired := make(chan struct{}, 1)
	var resTimeouts, reqTimeouts atomic.Int64
	var req *ClientRequest
	req, err := Request(RequestOptions{Host: host, Port: port, Agent: testAgent(t, AgentOptions{})}, func(res *IncomingMessage) {
		res.SetTimeout(50*time.Millisecond, func() {
			if resTimeouts.Add(1) == 1 {
				fired <- struct{}{}
			}
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	req.OnTimeout(func() { reqTimeouts.Add(1) })
	closed := make(chan struct{})
	req.OnClose(func() { close(closed) })
	req.End(nil, nil)
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("the response's SetTimeout callback never ran")
	}
	req.Destroy(nil)
	<-closed
	if reqTimeouts.Load() < 1 {
		t.Errorf("the request's OnTimeout heard %d timeouts; want at least 1", reqTimeouts.Load())
	}
}
