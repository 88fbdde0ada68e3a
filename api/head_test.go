package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// headLines returns the field lines of the first response head in out.
func headLines(out string) []string {
	head, _, _ := strings.Cut(out, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	return lines[1:]
}

// fieldValues returns the values of the named field among lines.
func fieldValues(lines []string, name string) []string {
	var vs []string
	for _, l := range lines {
		n, v, _ := strings.Cut(l, ": ")
		if strings.EqualFold(n, name) {
			vs = append(vs, v)
		}
	}
	return vs
}

// TestHandlerDateReplacesAutomatic: a Date the handler sets (SetHeader or
// WriteHead) is the response's only Date field; without one the engine
// adds its own.
func TestHandlerDateReplacesAutomatic(t *testing.T) {
	const date = "Mon, 01 Jan 2024 00:00:00 GMT"
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		switch req.URL {
		case "/set":
			res.SetHeader("Date", date)
		case "/head":
			res.WriteHead(200, "", Header{"date", date})
		}
		res.End([]byte("x"), nil)
	}, quiet())
	addr := listen(t, srv)
	for _, path := range []string{"/set", "/head", "/auto"} {
		out := roundTrip(t, addr, "GET "+path+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		dates := fieldValues(headLines(out), "Date")
		if len(dates) != 1 {
			t.Errorf("%s: got %d Date fields (%q); want 1", path, len(dates), dates)
			continue
		}
		if path != "/auto" && dates[0] != date {
			t.Errorf("%s: Date %q; want the handler's %q", path, dates[0], date)
		}
		if path == "/auto" && dates[0] == date {
			t.Errorf("%s: Date %q; want the current date", path, dates[0])
		}
	}
}

// TestWriteHeadRepeatedFields: a single-valued field (one Node keeps only
// once, or Date) given to WriteHead more than once is sent once, with the
// last value; other fields given more than once are all sent, in order.
func TestWriteHeadRepeatedFields(t *testing.T) {
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		res.SetHeader("Content-Type", "text/html")
		res.WriteHead(200, "",
			Header{"Content-Type", "text/plain"}, Header{"Set-Cookie", "a=1"},
			Header{"content-type", "application/json"}, Header{"Set-Cookie", "b=2"})
		if got := res.GetHeader("Content-Type"); got != "application/json" {
			t.Errorf("GetHeader(Content-Type) = %q; want the last value", got)
		}
		res.End([]byte("{}"), nil)
	}, quiet())
	addr := listen(t, srv)
	lines := headLines(roundTrip(t, addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
	if got := fieldValues(lines, "Content-Type"); len(got) != 1 || got[0] != "application/json" {
		t.Errorf("Content-Type fields %q; want one, the last given", got)
	}
	if got := fieldValues(lines, "Set-Cookie"); len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Errorf("Set-Cookie fields %q; want both, in order", got)
	}
}

// TestClientRepeatedFields: RequestOptions.HeaderList sends a field once
// per entry, in order, after the Headers map's fields, and its values are
// validated like SetHeader's.
func TestClientRepeatedFields(t *testing.T) {
	heads := make(chan string, 1)
	host, port, _ := rawServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		var head strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		heads <- head.String()
		io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
	})
	req, err := Request(RequestOptions{Host: host, Port: port, Agent: testAgent(t, AgentOptions{}),
		Headers: map[string]string{"X-Map": "m"},
		HeaderList: []Header{
			{"Accept", "text/plain"}, {"X-Tag", "1"}, {"accept", "application/json"}, {"X-Tag", "2"},
		}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	req.OnClose(func() { close(done) })
	req.End(nil, nil)
	want := fmt.Sprintf("GET / HTTP/1.1\r\nHost: %s:%d\r\nX-Map: m\r\nAccept: text/plain\r\nX-Tag: 1\r\n"+
		"accept: application/json\r\nX-Tag: 2\r\n\r\n", host, port)
	if got := <-heads; got != want {
		t.Fatalf("head %q\nwant %q", got, want)
	}
	<-done
	if _, err := Request(RequestOptions{HeaderList: []Header{{"X", "a\nb"}}}, nil); err == nil {
		t.Error("a HeaderList value with a line feed was accepted")
	}
}
