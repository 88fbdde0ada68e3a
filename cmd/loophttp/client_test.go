package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func runGet(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := get(args, strings.NewReader("from stdin"), &out, &errOut)
	return out.String(), err
}

func TestGetBodyAndHead(t *testing.T) {
	url := startTest(t)
	out, err := runGet(t, url+"/")
	if err != nil || out != "Hello, World!" {
		t.Fatalf("body %q, %v", out, err)
	}
	out, err = runGet(t, "-i", url+"/status/404")
	if err != nil || !strings.HasPrefix(out, "HTTP/1.1 404 Not Found\r\n") || !strings.Contains(out, "\r\n\r\n") {
		t.Fatalf("-i: %q, %v", out, err)
	}
}

func TestGetJSONDescribesTheExchange(t *testing.T) {
	url := startTest(t)
	file := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(file, []byte{0xE6, 'a'}, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runGet(t, "-json", "-X", "PUT", "-H", "X-Test: 1", "-d", "@"+file, url+"/anything")
	if err != nil {
		t.Fatal(err)
	}
	var res getResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if res.Status != 200 || res.Version != "HTTP/1.1" || res.Reason != "OK" || len(res.Interim) != 0 {
		t.Fatalf("%+v", res)
	}
	// -json maps each octet of the body to a code point: map it back,
	// then read the server's description (itself in the convention).
	var raw []byte
	for _, r := range res.Body {
		raw = append(raw, byte(r))
	}
	var desc description
	if err := json.Unmarshal(raw, &desc); err != nil {
		t.Fatalf("body %q: %v", raw, err)
	}
	if desc.Method != "PUT" || desc.Body != octets(string([]byte{0xE6, 'a'})) {
		t.Fatalf("description %+v", desc)
	}
	found := false
	for _, h := range desc.Headers {
		found = found || h == [2]string{"X-Test", "1"}
	}
	if !found {
		t.Fatalf("header missing from %v", desc.Headers)
	}
	out, err = runGet(t, "-d", "@-", url+"/echo")
	if err != nil || out != "from stdin" {
		t.Fatalf("stdin body: %q, %v", out, err)
	}
}

func TestGetFailsWithoutResponse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := runGet(t, "http://"+addr+"/"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("refused: %v", err)
	}
	if _, err := runGet(t, "ftp://"+addr+"/"); err == nil {
		t.Fatal("ftp URL accepted")
	}
}

// TestLoadWaitsForRequestsInFlight: with pipelining, the run ends while
// each connection still has requests in flight. Their responses belong in
// the result: runLoad used to read the figures as soon as one response
// came back after the end, while the others were still being recorded (a
// data race, and requests missing from the count). Here every connection
// sends depth requests at once, the server answers one per 100 ms, and
// the run ends at 50 ms, before the first answer.
func TestLoadWaitsForRequestsInFlight(t *testing.T) {
	url := startTest(t)
	target, err := parseTarget(url + "/delay/100")
	if err != nil {
		t.Fatal(err)
	}
	const conns, depth = 2, 4
	res, err := runLoad(target, conns, depth, 1, 50*time.Millisecond, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.requests < conns*depth || res.errors != 0 || len(res.latencies) != int(res.requests) {
		t.Fatalf("%d requests (want at least %d), %d errors, %d latencies", res.requests, conns*depth, res.errors, len(res.latencies))
	}
	// The rate is over the time the requests took: until the last
	// response, which cannot come before depth delays have passed.
	if res.elapsed < depth*100*time.Millisecond {
		t.Errorf("elapsed %v: the run's time ends before its last response", res.elapsed)
	}
}

func TestLoadCountsRequests(t *testing.T) {
	url := startTest(t)
	target, err := parseTarget(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	for _, depth := range []int{1, 8} {
		res, err := runLoad(target, 4, depth, 1, 300*time.Millisecond, &progress)
		if err != nil {
			t.Fatal(err)
		}
		if res.requests == 0 || res.errors != 0 || len(res.latencies) != int(res.requests) {
			t.Fatalf("pipeline %d: %d requests, %d errors, %d latencies", depth, res.requests, res.errors, len(res.latencies))
		}
	}
	res, err := runLoad(target, 1, 1, 1, 100*time.Millisecond, &progress)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res.print(&out)
	if !strings.Contains(out.String(), "requests/s:") || !strings.Contains(out.String(), "p99") {
		t.Fatalf("report %q", out.String())
	}
}
