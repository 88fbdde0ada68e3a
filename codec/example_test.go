package codec_test

import (
	"fmt"

	"github.com/loophttp/loophttp/codec"
)

func ExampleParseRequest() {
	buf := []byte("POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n0\r\n\r\n")
	var req codec.Request // reused for every request on a connection
	n, err := codec.ParseRequest(buf[:20], &req, nil)
	fmt.Println("partial:", n, err)

	n, err = codec.ParseRequest(buf, &req, nil)
	if err != nil {
		fmt.Println("answer with", err.(codec.Error).Status())
		return
	}
	fmt.Printf("%s %s %s host=%s framing=%v keep-alive=%v\n",
		req.Method, req.Target, req.Proto, req.Host, req.Framing, req.KeepAlive)

	var dec codec.ChunkedDecoder
	for rest := buf[n:]; ; {
		used, data, done, err := dec.Decode(rest, nil)
		if err != nil {
			fmt.Println("answer with", err.(codec.Error).Status())
			return
		}
		fmt.Printf("body %q\n", data)
		rest = rest[used:]
		if done {
			break
		}
	}
	// Output:
	// partial: 0 <nil>
	// POST /upload HTTP/1.1 host=example.com framing=chunked keep-alive=true
	// body "hello"
	// body ""
}

func ExampleParseRequest_error() {
	var req codec.Request
	_, err := codec.ParseRequest([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), &req, nil)
	fmt.Println(err, err.(codec.Error).Status())
	// Output: http: Content-Length with Transfer-Encoding 400
}

func ExampleAppendHeader() {
	b, _ := codec.AppendStatusLine(nil, 200)
	b, _ = codec.AppendHeader(b, "Content-Length", "2")
	_, err := codec.AppendHeader(b, "X-Evil", "a\r\nSet-Cookie: x=1")
	b = append(b, "\r\nok"...)
	fmt.Printf("%q %v\n", b, err)
	// Output: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" http: invalid field value
}
