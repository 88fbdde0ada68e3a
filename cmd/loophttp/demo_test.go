package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loophttp/loophttp/api"
	"github.com/loophttp/loophttp/internal/wirealloc"
)

func startTest(t *testing.T, args ...string) string {
	t.Helper()
	srv, addr, _, err := startDemo(append([]string{"-addr", "127.0.0.1:0", "-quiet", "-loops", "1"}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	closeOnCleanup(t, srv)
	return "http://" + addr
}

// closeOnCleanup closes srv when the test ends and fails it if the server
// has not stopped within 10 s.
func closeOnCleanup(t *testing.T, srv *api.Server) {
	t.Cleanup(func() {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		done := make(chan error, 1)
		srv.Close(func(err error) { done <- err })
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("demo did not stop")
		}
	})
}

func fetch(t *testing.T, method, url, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body == "" {
		req.Body = nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestDemoEndpoints(t *testing.T) {
	base := startTest(t)
	tests := []struct {
		path, wantBody, wantType string
		wantStatus               int
	}{
		{"/", "Hello, World!", "text/plain", 200},
		{"/json", `{"message":"Hello, World!"}`, "application/json", 200},
		{"/status/418", "", "", 418},
		{"/status/99", "status must be 200..599", "text/plain", 400},
		{"/bytes/5", "abcde", "text/plain", 200},
		{"/stream/2", "line 0\nline 1\n", "text/plain", 200},
		{"/delay/20", "delayed 20 ms", "text/plain", 200},
		{"/nowhere", "not found", "text/plain", 404},
	}
	for _, tt := range tests {
		resp, body := fetch(t, "GET", base+tt.path, "", nil)
		if resp.StatusCode != tt.wantStatus || body != tt.wantBody || resp.Header.Get("Content-Type") != tt.wantType {
			t.Errorf("%s: %d %q %q; want %d %q %q", tt.path, resp.StatusCode, body, resp.Header.Get("Content-Type"),
				tt.wantStatus, tt.wantBody, tt.wantType)
		}
	}
	resp, _ := fetch(t, "GET", base+"/stream/2", "", nil)
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("/stream is not chunked: %v", resp.TransferEncoding)
	}
}

func TestDemoEcho(t *testing.T) {
	base := startTest(t)
	resp, body := fetch(t, "POST", base+"/echo", "with a length", http.Header{"Content-Type": {"text/x-test"}})
	if body != "with a length" || resp.ContentLength != int64(len(body)) || resp.Header.Get("Content-Type") != "text/x-test" {
		t.Fatalf("%q length %d type %q", body, resp.ContentLength, resp.Header.Get("Content-Type"))
	}
	// Without a length the echo is chunked.
	req, _ := http.NewRequest("POST", base+"/echo", io.NopCloser(strings.NewReader("streamed")))
	req.ContentLength = -1
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if string(b) != "streamed" || len(r.TransferEncoding) == 0 {
		t.Fatalf("%q %v", b, r.TransferEncoding)
	}
}

func TestDemoDescription(t *testing.T) {
	for _, args := range [][]string{nil, {"-inspect"}} {
		base := startTest(t, args...)
		path := "/anything/x?y=1"
		if len(args) > 0 {
			path = "/whatever" // -inspect describes every request
		}
		_, body := fetch(t, "PUT", base+path, "caf\xe9\xff", http.Header{"X-Test": {"a"}})
		var d description
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			t.Fatalf("%v: %q", err, body)
		}
		if d.Method != "PUT" || d.Target != path || d.Version != "HTTP/1.1" || d.Body != "caf\u00e9\u00ff" {
			t.Fatalf("description %+v", d)
		}
		found := false
		for _, h := range d.Headers {
			found = found || h == [2]string{"X-Test", "a"}
		}
		if !found {
			t.Fatalf("headers %q", d.Headers)
		}
	}
}

// TestPlaintextAllocs: the demo answers "/" (the benchmarks' endpoint)
// without allocating, over a loopback connection whose client allocates
// nothing.
func TestPlaintextAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("counts allocations over a socket")
	}
	addr := strings.TrimPrefix(startTest(t), "http://")
	if n := wirealloc.PerRequest(t, addr, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "Hello, World!"); n > 0 {
		t.Errorf("%v allocations per request; want 0", n)
	}
}
