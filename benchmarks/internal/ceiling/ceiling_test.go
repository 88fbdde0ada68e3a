package ceiling

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/loophttp/loophttp/benchmarks/internal/plaintest"
	"github.com/panjf2000/gnet/v2"
)

func TestAnswers(t *testing.T) {
	type booted struct {
		eng  gnet.Engine
		addr net.Addr
	}
	up := make(chan booted, 1)
	done := make(chan error, 1)
	go func() { done <- Run("127.0.0.1:0", func(e gnet.Engine, a net.Addr) { up <- booted{e, a} }) }()
	var b booted
	select {
	case b = <-up:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("not booted after 5 s")
	}
	if b.addr == nil {
		t.Fatal("no bound address")
	}
	plaintest.Check(t, b.addr.String())
	if err := b.eng.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
}
