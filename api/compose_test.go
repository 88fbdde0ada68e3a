package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// jsonResponse and fullBodyRequest port T9–T11: IoT.js subclasses
// IncomingMessage and ServerResponse; in Go the same extensions are
// types that embed the objects and add methods.
type jsonResponse struct{ *ServerResponse }

func (r jsonResponse) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.SetHeader("Content-Length", itoa(len(b)))
	r.SetHeader("Content-Type", "application/json")
	r.WriteHead(200, "")
	return r.End(b, nil)
}

type fullBodyRequest struct {
	*IncomingMessage
	ExtraField string
}

// OnFullBody collects the body and calls fn with it at the end.
func (r fullBodyRequest) OnFullBody(fn func([]byte)) {
	var body []byte
	r.OnData(func(c []byte) { body = append(body, c...) })
	r.OnEnd(func() { fn(body) })
}

func TestComposedRequestAndResponse(t *testing.T) {
	srv := CreateServer(func(in *IncomingMessage, out *ServerResponse) {
		req, res := fullBodyRequest{in, "found"}, jsonResponse{out}
		if req.Method != "POST" || req.URL != "/put_msg" || req.ExtraField != "found" {
			t.Errorf("%s %s %q", req.Method, req.URL, req.ExtraField)
		}
		req.OnFullBody(func(body []byte) {
			if string(body) != "DEMO" {
				t.Errorf("body %q", body)
			}
			res.SendJSON(map[string]string{"message": "DATA"})
		})
	}, quiet())
	addr := listen(t, srv)
	resp, err := http.Post("http://"+addr+"/put_msg", "text/plain", strings.NewReader("DEMO"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got["message"] != "DATA" ||
		resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%v %v %v", got, err, resp.Header)
	}
}

// TestTimeoutOrder: the server timeout fires on the server, then the
// request (not yet complete), then the response; with listeners the
// connection is kept, and the response listener may still answer.
func TestTimeoutOrder(t *testing.T) {
	var mu sync.Mutex
	var order []string
	log := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	srv := CreateServer(func(req *IncomingMessage, res *ServerResponse) {
		req.OnTimeout(func() { log("request") })
		res.OnTimeout(func() {
			log("response")
			res.WriteHead(503, "")
			res.End([]byte("late"), nil)
		})
	}, quiet())
	srv.SetTimeout(150*time.Millisecond, func(*Socket) { log("server") })
	addr := listen(t, srv)
	// The body never completes: 5 bytes declared, 2 sent.
	c := dialRaw(t, addr, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab")
	b := make([]byte, 12)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "HTTP/1.1 503" {
		t.Fatalf("got %q, %v", b, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, ",") != "server,request,response" {
		t.Fatalf("order %v", order)
	}
}
