package main

import (
	"context"
	"testing"
	"time"

	"github.com/loophttp/loophttp/benchmarks/internal/plaintest"
)

func TestAnswers(t *testing.T) {
	h, addr, err := start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
	}()
	plaintest.Check(t, addr.String())
}
