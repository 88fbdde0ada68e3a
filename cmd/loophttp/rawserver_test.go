package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// rawServer is a small HTTP/1.1 server on a plain socket, one goroutine
// per connection, that misbehaves as told: it closes, resets, stalls or
// answers 500, the way servers in the field do.
type rawServer struct {
	closeAfter int  // answer this many requests per connection, the last with Connection: close (0: no limit)
	http10     bool // answer HTTP/1.0 without a length, closing to end each body
	status     int  // the status of every answer (default 200)
	reset      bool // reset each connection once its first request is in
	stall      bool // read requests, answer none

	conns     atomic.Int64 // connections accepted
	responses atomic.Int64 // responses written

	mu    sync.Mutex
	first []byte // the first request received, head and body
	open  map[net.Conn]bool
	wg    sync.WaitGroup
}

// start serves on 127.0.0.1:0 until the test ends and returns the URL.
func (s *rawServer) start(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.open = map[net.Conn]bool{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.mu.Lock()
			s.open[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go s.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return "http://" + ln.Addr().String() + "/"
}

func (s *rawServer) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.open, c)
		s.mu.Unlock()
		c.Close()
	}()
	br := bufio.NewReader(c)
	for n := 1; ; n++ {
		req, err := readRequest(br)
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.first == nil {
			s.first = req
		}
		s.mu.Unlock()
		switch {
		case s.reset:
			c.(*net.TCPConn).SetLinger(0) // close sends RST
			return
		case s.stall:
			io.Copy(io.Discard, br) // until the client gives up
			return
		}
		last := s.http10 || s.closeAfter > 0 && n >= s.closeAfter
		// Counted before the write: the client may read the response and
		// the test compare counts before this goroutine runs again.
		s.responses.Add(1)
		if _, err := c.Write(s.answer(last)); err != nil {
			s.responses.Add(-1) // not written whole: nobody can have counted it
			return
		}
		if last {
			// Close as servers do (RFC 9112 §9.6): the write side first,
			// then drop what the client pipelined until it closes, so the
			// close is not a reset that could destroy the response.
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, br)
			return
		}
	}
}

// answer is one response; last says it is the connection's last.
func (s *rawServer) answer(last bool) []byte {
	status := s.status
	if status == 0 {
		status = 200
	}
	if s.http10 {
		return []byte("HTTP/1.0 " + strconv.Itoa(status) + " X\r\nContent-Type: text/plain\r\n\r\nhello")
	}
	head := "HTTP/1.1 " + strconv.Itoa(status) + " X\r\nContent-Length: 5\r\n"
	if last {
		head += "Connection: close\r\n"
	}
	return []byte(head + "\r\nhello")
}

// readRequest reads one request (head and Content-Length body).
func readRequest(br *bufio.Reader) ([]byte, error) {
	var req bytes.Buffer
	length := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		req.WriteString(line)
		if line == "\r\n" {
			break
		}
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "content-length") {
			length, _ = strconv.Atoi(strings.TrimSpace(value))
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, err
	}
	req.Write(body)
	return req.Bytes(), nil
}

// firstRequest returns the first request the server read.
func (s *rawServer) firstRequest() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.first)
}
