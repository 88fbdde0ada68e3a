package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// loadResult is the summary of a run.
type loadResult struct {
	url         string
	conns       int
	rate        float64 // -R; 0 without
	interrupted bool    // Ctrl-C ended the run
	elapsed     time.Duration
	requests    int64 // complete responses
	bytes       int64
	latency     [5]time.Duration // p50, p90, p99, p99.9, max
	status      []statusCount    // ascending
	errs        [numErrKinds]int64
}

type statusCount struct {
	code int
	n    int64
}

// quantiles are the latency quantiles reported, before the maximum.
var quantiles = []float64{0.50, 0.90, 0.99, 0.999}

var latencyNames = [5]string{"p50", "p90", "p99", "p99.9", "max"}

// result takes the summary. The time of the run is until its end, or its
// last response when that came later (the responses in flight at the end
// are counted), or until the interrupt. Safe from any goroutine.
func (r *loadRun) result(interrupted bool) *loadResult {
	res := &loadResult{
		url:         r.cfg.target.url(),
		conns:       r.cfg.conns,
		rate:        r.cfg.rate,
		interrupted: interrupted,
		requests:    r.responses.Load(),
		bytes:       r.bytes.Load(),
	}
	res.elapsed = time.Since(r.start)
	if !interrupted {
		res.elapsed = max(r.cfg.dur, time.Duration(r.last.Load()-r.start.UnixNano()))
	}
	copy(res.latency[:], r.hist.quantiles(quantiles...))
	res.latency[4] = r.hist.maximum()
	for code := range r.status {
		if n := r.status[code].Load(); n > 0 {
			res.status = append(res.status, statusCount{code, n})
		}
	}
	for k := range r.errs {
		res.errs[k] = r.errs[k].Load()
	}
	return res
}

func (res *loadResult) perSecond(n int64) float64 { return float64(n) / res.elapsed.Seconds() }

// non2xx counts the responses whose status is not 2xx.
func (res *loadResult) non2xx() int64 {
	var n int64
	for _, s := range res.status {
		if s.code < 200 || s.code > 299 {
			n += s.n
		}
	}
	return n
}

func (res *loadResult) errorCount() int64 {
	var n int64
	for _, e := range res.errs {
		n += e
	}
	return n
}

// print writes the summary for people.
func (res *loadResult) print(w io.Writer) error {
	var b strings.Builder
	if res.interrupted {
		b.WriteString("interrupted: the summary covers the run until Ctrl-C\n")
	}
	fmt.Fprintf(&b, "%s responses in %.2f s, %s read, %d connections\n",
		group(res.requests), res.elapsed.Seconds(), byteSize(float64(res.bytes)), res.conns)
	fmt.Fprintf(&b, "requests/s:  %s", group(int64(math.Round(res.perSecond(res.requests)))))
	if res.rate > 0 {
		fmt.Fprintf(&b, " (target %s)", group(int64(math.Round(res.rate))))
	}
	fmt.Fprintf(&b, "\nbytes/s:     %s\n", byteSize(res.perSecond(res.bytes)))
	if res.requests > 0 {
		unit, div := latencyUnit(res.latency[2])
		fmt.Fprintf(&b, "latency %s:", unit)
		for i, d := range res.latency {
			fmt.Fprintf(&b, "  %s %s", latencyNames[i], roundIn(d, div))
		}
		b.WriteString("\n")
		if res.rate > 0 {
			b.WriteString("             (from each request's intended send time: corrected for coordinated omission)\n")
		}
	}
	b.WriteString("status:     ")
	for _, s := range res.status {
		fmt.Fprintf(&b, " %d: %s", s.code, group(s.n))
	}
	if n := res.non2xx(); n > 0 {
		fmt.Fprintf(&b, "\nnon-2xx:     %s", group(n))
	}
	fmt.Fprintf(&b, "\nerrors:      %s", group(res.errorCount()))
	sep := " ("
	for k, n := range res.errs {
		if n > 0 {
			fmt.Fprintf(&b, "%s%s %s", sep, errKind(k), group(n))
			sep = ", "
		}
	}
	if sep == ", " {
		b.WriteString(")")
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// latencyUnit picks the one unit all latencies print in, from a
// representative value (p99): µs below 1 ms, ms below 10 s, else s.
func latencyUnit(d time.Duration) (string, time.Duration) {
	switch {
	case d < time.Millisecond:
		return "(µs)", time.Microsecond
	case d < 10*time.Second:
		return "(ms)", time.Millisecond
	}
	return "(s)", time.Second
}

// roundIn prints d in units of div: whole microseconds, or two decimals.
func roundIn(d, div time.Duration) string {
	if div == time.Microsecond {
		return strconv.FormatInt(int64(math.Round(float64(d)/float64(div))), 10)
	}
	return strconv.FormatFloat(float64(d)/float64(div), 'f', 2, 64)
}

// group writes n with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// byteSize prints a size in bytes with a binary prefix, to three digits.
func byteSize(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64) + " B"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + " " + units[i]
}

// loadJSON is the -json summary. Latencies are in microseconds.
type loadJSON struct {
	URL          string           `json:"url"`
	Connections  int              `json:"connections"`
	TargetRate   float64          `json:"target_rate,omitempty"`
	Corrected    bool             `json:"latency_corrected"`
	Interrupted  bool             `json:"interrupted"`
	Seconds      float64          `json:"seconds"`
	Responses    int64            `json:"responses"`
	Bytes        int64            `json:"bytes"`
	RequestsPerS float64          `json:"requests_per_second"`
	BytesPerS    float64          `json:"bytes_per_second"`
	LatencyUS    map[string]int64 `json:"latency_us"`
	Status       map[string]int64 `json:"status"`
	Non2xx       int64            `json:"non_2xx"`
	Errors       map[string]int64 `json:"errors"`
}

// writeJSON writes the summary as one JSON object.
func (res *loadResult) writeJSON(w io.Writer) error {
	j := loadJSON{
		URL: res.url, Connections: res.conns, TargetRate: res.rate, Corrected: res.rate > 0,
		Interrupted: res.interrupted, Seconds: res.elapsed.Seconds(),
		Responses: res.requests, Bytes: res.bytes,
		RequestsPerS: res.perSecond(res.requests), BytesPerS: res.perSecond(res.bytes),
		LatencyUS: map[string]int64{}, Status: map[string]int64{}, Non2xx: res.non2xx(), Errors: map[string]int64{},
	}
	for i, d := range res.latency {
		j.LatencyUS[latencyNames[i]] = d.Microseconds()
	}
	for _, s := range res.status {
		j.Status[strconv.Itoa(s.code)] = s.n
	}
	for k, n := range res.errs {
		j.Errors[errKind(k).String()] = n
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}
