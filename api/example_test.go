package api_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/loophttp/loophttp/api"
)

func ExampleCreateServer() {
	srv := api.CreateServer(func(req *api.IncomingMessage, res *api.ServerResponse) {
		res.SetHeader("Content-Type", "text/plain")
		res.End([]byte("Hello, World!"), nil)
	}, &api.Options{Loops: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.Listen(0, "127.0.0.1", 0, nil); err != nil {
		fmt.Println(err)
		return
	}
	a := srv.Address()

	req, _ := http.NewRequest("GET", "http://"+net.JoinHostPort(a.Address, strconv.Itoa(a.Port))+"/", nil)
	req.Close = true // no idle connection left behind, so Close finishes at once
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"), string(body))

	done := make(chan error)
	srv.Close(func(err error) { done <- err })
	fmt.Println("closed:", <-done)
	// Output:
	// 200 OK text/plain Hello, World!
	// closed: <nil>
}

// start listens on a free loopback port and returns the base URL; stop
// closes the server and waits.
func start(handler func(*api.IncomingMessage, *api.ServerResponse)) (*api.Server, string) {
	srv := api.CreateServer(handler, &api.Options{Loops: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.Listen(0, "127.0.0.1", 0, nil); err != nil {
		panic(err)
	}
	a := srv.Address()
	return srv, "http://" + net.JoinHostPort(a.Address, strconv.Itoa(a.Port))
}

func stop(srv *api.Server) {
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	done := make(chan error)
	srv.Close(func(err error) { done <- err })
	<-done
}

// A response written in pieces, without a length, goes out chunked.
func ExampleServerResponse_Write() {
	srv, url := start(func(req *api.IncomingMessage, res *api.ServerResponse) {
		for i := 1; i <= 3; i++ {
			res.Write([]byte(fmt.Sprintf("line %d\n", i)), nil)
		}
		res.End(nil, nil)
	})
	defer stop(srv)
	resp, err := http.Get(url + "/stream")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.TransferEncoding)
	fmt.Print(string(body))
	// Output:
	// [chunked]
	// line 1
	// line 2
	// line 3
}

// A handler may return and finish the response later, from any goroutine.
func ExampleServerResponse_End_fromGoroutine() {
	srv, url := start(func(req *api.IncomingMessage, res *api.ServerResponse) {
		go func() {
			time.Sleep(10 * time.Millisecond) // some slow work
			res.SetHeader("Content-Type", "text/plain")
			res.End([]byte("done later"), nil)
		}()
	})
	defer stop(srv)
	resp, err := http.Get(url + "/")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 done later
}

// SetTimeout sets the idle timeout of the server's connections and a
// listener for it; here the listener answers on behalf of a handler that
// never does.
func ExampleServer_SetTimeout() {
	var pending sync.Map // the socket's response, kept by the handler
	srv, url := start(func(req *api.IncomingMessage, res *api.ServerResponse) {
		pending.Store(req.Socket, res)
	})
	defer stop(srv)
	srv.SetTimeout(100*time.Millisecond, func(s *api.Socket) {
		if res, ok := pending.LoadAndDelete(s); ok {
			res.(*api.ServerResponse).WriteHead(503, "")
			res.(*api.ServerResponse).End([]byte("timed out"), nil)
		}
	})
	resp, err := http.Get(url + "/slow")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	// Output: 503 timed out
}

// A request with the client: events run on the client's loop; OnClose comes
// once, after the body.
func ExampleRequestURL() {
	srv, url := start(func(req *api.IncomingMessage, res *api.ServerResponse) {
		res.SetHeader("Content-Type", "text/plain")
		res.End([]byte("Hello, World!"), nil)
	})
	agent := api.NewAgent(api.AgentOptions{Loops: 1})
	var body []byte
	done := make(chan struct{})
	req, err := api.RequestURL(url+"/", api.RequestOptions{Agent: agent}, func(res *api.IncomingMessage) {
		fmt.Println(res.StatusCode, res.Header("content-type"))
		res.OnData(func(chunk []byte) { body = append(body, chunk...) })
	})
	if err != nil {
		panic(err)
	}
	req.OnError(func(err error) { fmt.Println("error:", err) })
	req.OnClose(func() { close(done) })
	req.End(nil, nil)
	<-done
	fmt.Println(string(body))
	agent.Destroy() // its idle connection would keep the server's Close waiting
	stop(srv)
	// Output:
	// 200 text/plain
	// Hello, World!
}
