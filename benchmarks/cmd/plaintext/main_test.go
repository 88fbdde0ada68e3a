package main

import (
	"testing"

	"github.com/loophttp/loophttp/benchmarks/internal/plaintest"
)

func TestAnswers(t *testing.T) {
	for _, c := range []struct {
		name  string
		start func(string, int, bool) (func(), string, error)
		loops int
	}{
		{"engine", startEngine, 1},
		{"api, default options", startAPI, 0},
		{"api, one loop", startAPI, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			shutdown, addr, err := c.start("127.0.0.1:0", c.loops, false)
			if err != nil {
				t.Fatal(err)
			}
			defer shutdown()
			plaintest.Check(t, addr)
		})
	}
}
