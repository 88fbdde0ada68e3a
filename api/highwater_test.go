package api

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// TestServerHighWater: Options.HighWater is the mark ServerResponse.Write
// answers by: a 2 KiB write returns true under the default mark and false
// under a 1 KiB one, 'drain' then comes, and the body arrives whole.
func TestServerHighWater(t *testing.T) {
	chunk := bytes.Repeat([]byte("w"), 2048)
	for _, tc := range []struct {
		mark int
		want bool
	}{{0, true}, {1024, false}} {
		opts := quiet()
		opts.HighWater = tc.mark
		got := make(chan bool, 1)
		srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
			res.SetHeader("Content-Length", strconv.Itoa(2*len(chunk)))
			ok := res.Write(chunk, nil)
			got <- ok
			if ok {
				res.End(chunk, nil)
				return
			}
			res.OnDrain(func() { res.End(chunk, nil) })
		}, opts)
		addr := listen(t, srv)
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(body) != 2*len(chunk) {
			t.Fatalf("mark %d: %d bytes, %v", tc.mark, len(body), err)
		}
		if ok := <-got; ok != tc.want {
			t.Errorf("mark %d: Write of %d bytes returned %v; want %v", tc.mark, len(chunk), ok, tc.want)
		}
	}
}

// TestAgentHighWater: AgentOptions.HighWater is the mark
// ClientRequest.Write answers by: a 2 KiB write from the test's goroutine
// returns true under the default mark and false under a 1 KiB one, 'drain'
// then comes, and the server gets the body whole.
func TestAgentHighWater(t *testing.T) {
	chunk := bytes.Repeat([]byte("c"), 2048)
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		n := 0
		req.OnData(func(c []byte) { n += len(c) })
		req.OnEnd(func() { res.End([]byte(strconv.Itoa(n)), nil) })
	}, quiet())
	listen(t, srv)
	port := srv.Address().Port
	for _, tc := range []struct {
		mark int
		want bool
	}{{0, true}, {1024, false}} {
		agent := NewAgent(AgentOptions{HighWater: tc.mark, Logger: quiet().Logger})
		body := make(chan string, 1)
		req, err := Request(RequestOptions{Method: "POST", Host: "127.0.0.1", Port: port, Path: "/", Agent: agent,
			Headers: map[string]string{"Content-Length": strconv.Itoa(2 * len(chunk))}}, func(res *IncomingMessage) {
			var b []byte
			res.OnData(func(c []byte) { b = append(b, c...) })
			res.OnEnd(func() { body <- string(b) })
		})
		if err != nil {
			t.Fatal(err)
		}
		drained := make(chan struct{})
		req.OnDrain(func() { close(drained) })
		if ok := req.Write(chunk, nil); ok != tc.want {
			t.Fatalf("mark %d: Write of %d bytes returned %v; want %v", tc.mark, len(chunk), ok, tc.want)
		}
		if !tc.want {
			<-drained
		}
		req.End(chunk, nil)
		if got := <-body; got != strconv.Itoa(2*len(chunk)) {
			t.Errorf("mark %d: the server got %s bytes; want %d", tc.mark, got, 2*len(chunk))
		}
		agent.Destroy()
	}
}
