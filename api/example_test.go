package api_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"

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
