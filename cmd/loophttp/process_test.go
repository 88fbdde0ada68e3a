package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loophttp/loophttp/internal/leakcheck"
)

// TestMain runs the command itself when LOOPHTTP_TEST_MAIN=1, so tests can
// start it as a process of its own (signals, peak memory) from the test
// binary. Otherwise it runs the tests and fails them if event loops or
// goroutines of this package are left running.
func TestMain(m *testing.M) {
	if os.Getenv("LOOPHTTP_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, notifyInterrupt))
	}
	leakcheck.Main(m, "gnet/v2.(*eventloop)", "loophttp/cmd/loophttp.", "loophttp/poller.")
}

// command returns the command line args as a process of its own.
func command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "LOOPHTTP_TEST_MAIN=1")
	return cmd
}

// peakRSS runs load for dur against url in a process of its own and
// returns its peak resident memory in KiB.
func peakRSS(t *testing.T, url string, dur time.Duration) int64 {
	t.Helper()
	cmd := command("load", "-c", "16", "-pipeline", "4", "-d", dur.String(), "-quiet", url)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child's own high-water mark (VmHWM), read while it runs: the
	// rusage of a finished child counts the parent's pages it shared
	// between fork and exec, so a test process grown large by earlier
	// tests would be blamed on load.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peak int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if hwm := procStatusKiB(status, "VmHWM:"); hwm > peak {
			peak = hwm
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("%v: %s", err, errOut.String())
			}
			if peak == 0 {
				t.Skip("no VmHWM in /proc")
			}
			t.Logf("load -d %v: peak RSS %d KiB\n%s", dur, peak, out.String())
			return peak
		case <-tick.C:
		}
	}
}

// procStatusKiB reads the line key ("VmHWM:", "VmRSS:") of a /proc
// status file, in KiB; 0 when it cannot.
func procStatusKiB(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// TestLoadMemoryBounded: load keeps no per-request state, so its peak
// memory does not grow with the run's length (it used to keep every
// latency: 24 MB after 1 s). The short version compares a 1 s run with a
// 4 s one; LOOPHTTP_FULL=1 runs 60 s, under 32 MiB.
func TestLoadMemoryBounded(t *testing.T) {
	url := startTest(t) + "/"
	const limit = 32 << 10 // KiB
	if os.Getenv("LOOPHTTP_FULL") == "1" {
		peak := peakRSS(t, url, 60*time.Second)
		if !raceEnabled && peak > limit {
			t.Errorf("peak RSS %d KiB over a 60 s run; want under %d", peak, limit)
		}
		return
	}
	short, long := peakRSS(t, url, time.Second), peakRSS(t, url, 4*time.Second)
	if long-short > 8<<10 {
		t.Errorf("peak RSS %d KiB after 1 s, %d KiB after 4 s: it grows with the run", short, long)
	}
	if !raceEnabled && long > limit {
		t.Errorf("peak RSS %d KiB; want under %d", long, limit)
	}
}

// TestLoadSIGINT: Ctrl-C (SIGINT) ends a load with its summary, exit 0.
func TestLoadSIGINT(t *testing.T) {
	url := startTest(t) + "/"
	cmd := command("load", "-c", "2", "-d", "1h", url)
	var out bytes.Buffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The first progress line comes after the handler is installed.
	br := bufio.NewReader(stderr)
	if _, err := br.ReadString('s'); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	rest, _ := br.ReadString(0) // until the process closes stderr
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v; stderr %q", err, rest)
	}
	if s := out.String(); !strings.HasPrefix(s, "interrupted") || !strings.Contains(s, "requests/s:") || !strings.Contains(s, "status:      200: ") {
		t.Fatalf("summary %q", s)
	}
}
