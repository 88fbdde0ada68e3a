package poller

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"golang.org/x/sys/unix"
)

// slogAdapter routes gnet's logger into log/slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debugf(f string, args ...any) { a.log(slog.LevelDebug, f, args) }

// Infof logs at debug level: gnet says only start-up chatter at info.
func (a slogAdapter) Infof(f string, args ...any)  { a.log(slog.LevelDebug, f, args) }
func (a slogAdapter) Warnf(f string, args ...any)  { a.log(slog.LevelWarn, f, args) }
func (a slogAdapter) Errorf(f string, args ...any) { a.log(slog.LevelError, f, args) }

// Fatalf logs at error level: a library must not end the process.
func (a slogAdapter) Fatalf(f string, args ...any) { a.log(slog.LevelError, f, args) }

func (a slogAdapter) log(level slog.Level, f string, args []any) {
	if a.l.Enabled(context.Background(), level) {
		a.l.Log(context.Background(), level, fmt.Sprintf(f, args...), "component", "gnet")
	}
}

func sockaddrToTCP(sa unix.Sockaddr) *net.TCPAddr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return nil
}
