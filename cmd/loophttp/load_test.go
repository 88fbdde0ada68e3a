package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// loadCfg is a short run against url with the given changes.
func loadCfg(t *testing.T, url string, change func(*loadConfig)) *loadConfig {
	t.Helper()
	target, err := parseTarget(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &loadConfig{target: target, method: "GET", conns: 4, depth: 1, loops: 1, dur: 300 * time.Millisecond, timeout: 5 * time.Second}
	if change != nil {
		change(cfg)
	}
	return cfg
}

func runCfg(t *testing.T, cfg *loadConfig) *loadResult {
	t.Helper()
	res, err := runLoad(cfg, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// errsBut reports the failures counted other than kinds.
func errsBut(res *loadResult, kinds ...errKind) int64 {
	n := res.errorCount()
	for _, k := range kinds {
		n -= res.errs[k]
	}
	return n
}

func TestLoadKeepAlive(t *testing.T) {
	url := startTest(t)
	for _, depth := range []int{1, 8} {
		res := runCfg(t, loadCfg(t, url+"/", func(c *loadConfig) { c.depth = depth }))
		if res.requests == 0 || res.errorCount() != 0 || res.non2xx() != 0 {
			t.Fatalf("pipeline %d: %d responses, errors %v, %d non-2xx", depth, res.requests, res.errs, res.non2xx())
		}
		// "Hello, World!" and a head of at least "HTTP/1.1 200 OK\r\n\r\n".
		if min := res.requests * int64(len("Hello, World!")+19); res.bytes < min {
			t.Errorf("pipeline %d: %d bytes for %d responses; want at least %d", depth, res.bytes, res.requests, min)
		}
	}
}

// TestLoadReconnects: servers that close connections, with Connection:
// close after every response or after 1,000 (as nginx does), or as
// HTTP/1.0 without a length. load opens a new connection each time and
// counts no failure; with pipelining, the requests the server never
// answered are not failures either.
func TestLoadReconnects(t *testing.T) {
	tests := []struct {
		name  string
		srv   *rawServer
		depth int
		dur   time.Duration
	}{
		{"close every response", &rawServer{closeAfter: 1}, 1, 300 * time.Millisecond},
		{"close every response, pipelined", &rawServer{closeAfter: 1}, 4, 300 * time.Millisecond},
		{"HTTP/1.0", &rawServer{http10: true}, 1, 300 * time.Millisecond},
		{"close after 1,000", &rawServer{closeAfter: 1000}, 1, 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.srv
			url := srv.start(t)
			res := runCfg(t, loadCfg(t, url, func(c *loadConfig) { c.conns, c.depth, c.dur = 2, tt.depth, tt.dur }))
			if res.errorCount() != 0 {
				t.Fatalf("errors %v; want none", res.errs)
			}
			if res.requests != srv.responses.Load() {
				t.Errorf("%d responses counted; the server sent %d", res.requests, srv.responses.Load())
			}
			// Beside the connect that checks the address first, every
			// connection after the first two is a reconnect.
			reconnects := srv.conns.Load() - 3
			if reconnects < 2 {
				t.Errorf("%d responses on %d connections: load did not reconnect", res.requests, srv.conns.Load())
			}
			if tt.srv.closeAfter == 1000 && res.requests < 2*1000+1 {
				t.Errorf("%d responses: not past the first connections' 1,000", res.requests)
			}
		})
	}
}

// TestLoadConnectionClose: with -H 'Connection: close' every request goes
// on a connection of its own, pipelined or not, and none is a failure.
func TestLoadConnectionClose(t *testing.T) {
	srv := &rawServer{}
	url := srv.start(t)
	for _, depth := range []string{"1", "4"} {
		var out bytes.Buffer
		err := load([]string{"-c", "2", "-pipeline", depth, "-d", "200ms", "-quiet", "-json", "-H", "Connection: keep-alive, close", url}, &out, io.Discard, nil)
		var j loadJSON
		if err == nil {
			err = json.Unmarshal(out.Bytes(), &j)
		}
		if err != nil {
			t.Fatal(err)
		}
		var failures int64
		for _, n := range j.Errors {
			failures += n
		}
		if j.Responses < 4 || failures != 0 {
			t.Fatalf("pipeline %s: %d responses, errors %v", depth, j.Responses, j.Errors)
		}
	}
}

// TestLoadFailures: a server that resets every connection and one that
// never answers. Each connection's failure counts once, whatever the
// number of requests in flight on it, and the run ends on time.
func TestLoadFailures(t *testing.T) {
	tests := []struct {
		name string
		srv  *rawServer
		kind errKind
	}{
		{"reset", &rawServer{reset: true}, errReset},
		{"stall", &rawServer{stall: true}, errTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.srv
			url := srv.start(t)
			cfg := loadCfg(t, url, func(c *loadConfig) { c.depth, c.timeout = 4, 100*time.Millisecond })
			start := time.Now()
			res := runCfg(t, cfg)
			if took := time.Since(start); took > cfg.dur+cfg.timeout+endGrace {
				t.Errorf("the run took %v", took)
			}
			if res.requests != 0 || res.errs[tt.kind] == 0 || errsBut(res, tt.kind) != 0 {
				t.Fatalf("%d responses, errors %v; want only %v", res.requests, res.errs, tt.kind)
			}
			if n := res.errorCount(); n > srv.conns.Load()-1 {
				t.Errorf("%d failures counted on %d connections: one per connection at most", n, srv.conns.Load()-1)
			}
			var out bytes.Buffer
			if err := res.print(&out); err != nil || !strings.Contains(out.String(), tt.kind.String()+" ") {
				t.Errorf("summary %q, %v: the kind is missing", out.String(), err)
			}
		})
	}
}

func TestLoadCountsStatus(t *testing.T) {
	srv := &rawServer{status: 500}
	url := srv.start(t)
	res := runCfg(t, loadCfg(t, url, nil))
	if res.requests == 0 || res.non2xx() != res.requests || len(res.status) != 1 || res.status[0].code != 500 {
		t.Fatalf("%d responses, status %v, %d non-2xx", res.requests, res.status, res.non2xx())
	}
	var out bytes.Buffer
	if err := res.print(&out); err != nil {
		t.Fatal(err)
	}
	if want := "non-2xx:     " + group(res.requests); !strings.Contains(out.String(), want) {
		t.Errorf("summary %q lacks %q", out.String(), want)
	}
}

// TestLoadSendsRequest: -m, -H in order (a name twice included) and -body
// @file reach the server as given.
func TestLoadSendsRequest(t *testing.T) {
	srv := &rawServer{}
	url := srv.start(t)
	file := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(file, []byte("a body"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := load([]string{"-c", "1", "-d", "100ms", "-quiet", "-m", "PUT", "-H", "X-B: 2", "-H", "X-A: 1", "-H", "X-B: 3",
		"-body", "@" + file, url + "x?y=1"}, &out, &errOut, nil)
	if err != nil {
		t.Fatalf("%v; stderr %q", err, errOut.String())
	}
	want := "PUT /x?y=1 HTTP/1.1\r\nHost: " + strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/") +
		"\r\nX-B: 2\r\nX-A: 1\r\nX-B: 3\r\nContent-Length: 6\r\n\r\na body"
	if got := srv.firstRequest(); got != want {
		t.Errorf("request\n%q\nwant\n%q", got, want)
	}
}

// TestLoadRate: -R holds the rate within 5% over 2 s.
func TestLoadRate(t *testing.T) {
	url := startTest(t)
	res := runCfg(t, loadCfg(t, url+"/", func(c *loadConfig) { c.rate, c.dur = 1000, 2*time.Second }))
	rate := res.perSecond(res.requests)
	if rate < 950 || rate > 1050 || res.errorCount() != 0 {
		t.Fatalf("%d responses in %v: %.0f/s, errors %v; want 1000/s within 5%%", res.requests, res.elapsed, rate, res.errs)
	}
}

// TestLoadRateCorrectsLatency: at -R 50 on one connection, a server that
// takes 100 ms per response falls behind the schedule; each response's
// latency counts from when its request was meant to go out (wrk2), so the
// later ones report the wait: the n-th is about n×80 ms late.
func TestLoadRateCorrectsLatency(t *testing.T) {
	url := startTest(t)
	res := runCfg(t, loadCfg(t, url+"/delay/100", func(c *loadConfig) { c.conns, c.rate, c.dur = 1, 50, time.Second }))
	if res.requests < 5 || res.latency[4] < 400*time.Millisecond {
		t.Fatalf("%d responses, max latency %v; want the schedule's delay counted (≥ 400 ms)", res.requests, res.latency[4])
	}
	var out bytes.Buffer
	res.print(&out)
	if !strings.Contains(out.String(), "coordinated omission") || !strings.Contains(out.String(), "(target 50)") {
		t.Errorf("summary %q", out.String())
	}
}

// TestLoadWaitsForRequestsInFlight: the responses in flight at the end
// belong in the result. Every connection sends depth requests at once,
// the server answers one per 100 ms, and the run ends at 50 ms, before
// the first answer.
func TestLoadWaitsForRequestsInFlight(t *testing.T) {
	url := startTest(t)
	const conns, depth = 2, 4
	res := runCfg(t, loadCfg(t, url+"/delay/100", func(c *loadConfig) { c.conns, c.depth, c.dur = conns, depth, 50*time.Millisecond }))
	if res.requests < conns*depth || res.errorCount() != 0 || int64(res.requests) != int64(sumStatus(res)) {
		t.Fatalf("%d responses (want at least %d), errors %v", res.requests, conns*depth, res.errs)
	}
	// The rate is over the time until the last response, which cannot
	// come before depth delays have passed.
	if res.elapsed < depth*100*time.Millisecond {
		t.Errorf("elapsed %v: the run's time ends before its last response", res.elapsed)
	}
}

func sumStatus(res *loadResult) int64 {
	var n int64
	for _, s := range res.status {
		n += s.n
	}
	return n
}

// TestLoadInterrupt: Ctrl-C ends the run at once with the summary.
func TestLoadInterrupt(t *testing.T) {
	url := startTest(t)
	pr, pw := io.Pipe()
	interrupt := make(chan os.Signal, 1)
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- load([]string{"-c", "2", "-d", "1h", url + "/"}, &out, pw, interrupt) }()
	// The first progress line says the run is under way.
	if _, err := pr.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	interrupt <- os.Interrupt
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no summary 10 s after Ctrl-C")
	}
	pw.Close()
	if s := out.String(); !strings.HasPrefix(s, "interrupted") || !strings.Contains(s, "requests/s:") || !strings.Contains(s, "latency") {
		t.Fatalf("summary %q", s)
	}
}

func TestLoadJSON(t *testing.T) {
	url := startTest(t)
	var out bytes.Buffer
	if err := load([]string{"-c", "2", "-d", "200ms", "-quiet", "-json", url + "/"}, &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	var j loadJSON
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatalf("%v in %q", err, out.String())
	}
	if j.Responses == 0 || j.Status["200"] != j.Responses || j.LatencyUS["max"] < j.LatencyUS["p50"] || j.Errors["timeout"] != 0 ||
		j.RequestsPerS <= 0 || j.BytesPerS <= 0 || j.Connections != 2 || j.Corrected {
		t.Fatalf("%+v", j)
	}
	if _, ok := j.Errors["reset"]; !ok {
		t.Errorf("errors %v: every kind should be listed", j.Errors)
	}
}

// TestLoadSummaryUnits: latencies print in one unit, rounded.
func TestLoadSummaryUnits(t *testing.T) {
	res := &loadResult{conns: 1, elapsed: time.Second, requests: 10, bytes: 3 << 20,
		latency: [5]time.Duration{412345, 2805457, 2805457, 14200000, 1234567890}}
	var out bytes.Buffer
	res.print(&out)
	want := "latency (ms):  p50 0.41  p90 2.81  p99 2.81  p99.9 14.20  max 1234.57\n"
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "bytes/s:     3.00 MiB") {
		t.Fatalf("summary %q; want %q", out.String(), want)
	}
	res.latency = [5]time.Duration{51234, 98765, 412345, 900000, 3000000}
	out.Reset()
	res.print(&out)
	if want := "latency (µs):  p50 51  p90 99  p99 412  p99.9 900  max 3000\n"; !strings.Contains(out.String(), want) {
		t.Fatalf("summary %q; want %q", out.String(), want)
	}
}

// TestLoadRateEndsOnTime: at -R 1 a connection waits seconds for its next
// slot; the run still ends at its duration, with its one response.
func TestLoadRateEndsOnTime(t *testing.T) {
	url := startTest(t)
	cfg := loadCfg(t, url+"/", func(c *loadConfig) { c.conns, c.rate = 2, 1 })
	start := time.Now()
	res := runCfg(t, cfg)
	// Waiting for the next slot would take 2 s, or the request timeout
	// and the grace (6 s) before it gives up.
	if took := time.Since(start); took > cfg.dur+time.Second {
		t.Errorf("the run took %v; want about %v", took, cfg.dur)
	}
	if res.requests != 1 || res.errorCount() != 0 {
		t.Errorf("%d responses, errors %v; want 1 response (the first slot)", res.requests, res.errs)
	}
}

// TestLoadTargetVerbatim: load sends the target as written, as get and
// curl do (it used to re-encode `/a|b` as `/a%7Cb`), without the fragment.
func TestLoadTargetVerbatim(t *testing.T) {
	for raw, want := range map[string]string{
		"http://h/a|b?q={1}&ids[]=1": "/a|b?q={1}&ids[]=1",
		"http://h:8080/p[1]/100%":    "/p[1]/100%",
		"http://h/x#frag":            "/x",
		"http://h?q=1":               "/?q=1",
		"http://h":                   "/",
	} {
		target, err := parseTarget(raw)
		if err != nil || target.path != want {
			t.Errorf("parseTarget(%q) = %q, %v; want %q", raw, target.path, err, want)
		}
	}
}

// TestLoadSummaryNamesTheScheme: the summary's URL keeps https (it said
// http:// for every target).
func TestLoadSummaryNamesTheScheme(t *testing.T) {
	for _, raw := range []string{"https://127.0.0.1:8443/x?y=1", "http://127.0.0.1:8080/x?y=1"} {
		tgt, err := parseTarget(raw)
		if err != nil {
			t.Fatal(err)
		}
		r := &loadRun{cfg: &loadConfig{target: tgt}, start: time.Now()}
		if got := r.result(true).url; got != raw {
			t.Errorf("summary URL %q, want %q", got, raw)
		}
	}
}
