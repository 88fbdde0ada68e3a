package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestGetTargetsRoundTrip feeds targets that browsers and curl send raw
// through `loophttp get` to `loophttp serve -inspect` (the same functions
// the binary runs): each reaches the server byte for byte and comes back
// in the description as it was written. Besides the targets of everyday
// use, every visible ASCII octet goes once into a path and once into a
// query ("%" as the escape "%25" in the path, where a bare one is an
// error; "#" starts a fragment, which is not sent).
func TestGetTargetsRoundTrip(t *testing.T) {
	base := startTest(t, "-inspect")
	targets := []string{
		"/anything?ids[]=1", "/?filter[name]=x", "/?q=a|b", "/?q={1}", "/a|b", "/p[1]",
		"/?q=100%", "/p[1]/a|b", "/a\\b", "/search?ids[]=1&ids[]=2", "/q?f={a}|b^c",
		"/\"quoted\"?<tag>=`x`", "/a%20b?q=%zz",
	}
	for c := byte(0x21); c < 0x7f; c++ {
		if c == '#' {
			continue
		}
		p := string(c)
		if c == '%' {
			p = "%25"
		}
		targets = append(targets, "/p"+p+"x", "/q?k="+string(c)+"x")
	}
	for _, target := range targets {
		out, err := runGet(t, base+target)
		if err != nil {
			t.Fatalf("get %q: %v", target, err)
		}
		var d description
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("get %q: %v in %q", target, err, out)
		}
		if d.Target != target {
			t.Errorf("target %q came back as %q", target, d.Target)
		}
	}
	out, err := runGet(t, base+"/p?q=1#section")
	if err != nil || !strings.Contains(out, `"target":"/p?q=1"`) {
		t.Fatalf("fragment: %q, %v; want the target without it", out, err)
	}
	// A malformed escape in the path is sent as written, and refused by
	// the server, as it would be from curl.
	out, err = runGet(t, "-i", base+"/100%")
	if err != nil || !strings.HasPrefix(out, "HTTP/1.1 400 ") {
		t.Fatalf("/100%%: %q, %v; want the server's 400", out, err)
	}
}

// TestServeMaxBody: serve -max-body bounds request bodies: a declared
// length over it gets 413 before the handler runs; a chunked body to /echo
// that passes it after the echo began ends in a close, the response never
// completed as if the body were whole.
func TestServeMaxBody(t *testing.T) {
	if _, _, _, err := startDemo([]string{"-addr", "127.0.0.1:0", "-quiet", "-max-body", "-1"}, io.Discard); err == nil {
		t.Fatal("-max-body -1 accepted")
	}
	addr := strings.TrimPrefix(startTest(t, "-max-body", "100"), "http://")
	out := exchange(t, addr, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n"+strings.Repeat("x", 101))
	if !strings.HasPrefix(out, "HTTP/1.1 413 ") {
		t.Fatalf("declared length over the limit: %q; want 413", out)
	}
	out = exchange(t, addr, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 100))
	if !strings.HasPrefix(out, "HTTP/1.1 200 ") || !strings.HasSuffix(out, strings.Repeat("x", 100)) {
		t.Fatalf("body at the limit: %q; want it echoed", out)
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n"+strings.Repeat("a", 64)+"\r\n")
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || line != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("first line %q, %v; want the echo's 200", line, err)
	}
	io.WriteString(c, "40\r\n"+strings.Repeat("b", 64)+"\r\n0\r\n\r\n")
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading to the close: %v", err)
	}
	if strings.HasSuffix(string(rest), "0\r\n\r\n") || strings.Contains(string(rest), "b") {
		t.Fatalf("the echo completed past the limit: %q", rest)
	}
}

// exchange sends raw on a new connection, half-closes, and returns all
// that came back.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	c.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
