package main

import (
	"testing"

	"github.com/loophttp/loophttp/benchmarks/internal/plaintest"
)

func TestAnswers(t *testing.T) {
	srv, addr, err := start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	plaintest.Check(t, addr.String())
}
