package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
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
