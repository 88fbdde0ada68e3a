package main

import (
	"testing"

	"github.com/loophttp/loophttp/benchmarks/internal/plaintest"
)

func TestAnswers(t *testing.T) {
	engine, addr, err := start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Stop()
	plaintest.Check(t, addr.String())
}
