// Command report turns the raw results of run.sh into a Markdown summary
// (medians over rounds, ratios to the ceiling and to fasthttp, the targets,
// the noise seen) on standard output, and a bar chart as a PNG.
//
//	report -runs results/runs.csv -idle results/idle.csv -machine results/machine.txt -png results/chart.png
//
// Ratios are the median over rounds of the ratio within each round (the two
// servers measured minutes apart at most), so that a busy spell on the shared
// machine moves both sides of a ratio alike.
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"strconv"
	"strings"
)

// run is one line of runs.csv.
type run struct {
	round             int
	mode, server      string
	rps, cpuS, perCPU float64
	p99, steal, load1 float64
	hasP99            bool
	errors            int
	busyBefore, other float64
}

// idle is one line of idle.csv.
type idle struct {
	server        string
	conns         int
	before, after int
	bytesPerConn  float64
	fdsAdded      int
}

var modeTitles = map[string]string{
	"ka64":   "keep-alive, 64 conns",
	"ka256":  "keep-alive, 256 conns",
	"pipe16": "pipelined 16, 256 conns",
}

var serverTitles = map[string]string{
	"loophttp":  "loophttp serve",
	"ceiling":   "ceiling (gnet, no parsing)",
	"fasthttp":  "fasthttp",
	"nethttp":   "net/http",
	"nbio":      "nbio nbhttp",
	"hertz":     "Hertz (netpoll)",
	"plaintext": "loophttp engine-level",
	"api":       "loophttp api, default options",
	"apireuse":  "loophttp api, ReuseMessages",
}

func main() {
	runsPath := flag.String("runs", "results/runs.csv", "runs.csv written by run.sh")
	idlePath := flag.String("idle", "results/idle.csv", "idle.csv written by run.sh (may be absent)")
	machinePath := flag.String("machine", "", "machine.txt written by run.sh")
	pngPath := flag.String("png", "", "write the chart here")
	flag.Parse()

	runs, err := readRuns(*runsPath)
	if err != nil {
		log.Fatal(err)
	}
	idles, err := readIdle(*idlePath)
	if err != nil && !os.IsNotExist(err) {
		log.Fatal(err)
	}
	var machine string
	if *machinePath != "" {
		b, err := os.ReadFile(*machinePath)
		if err != nil {
			log.Fatal(err)
		}
		machine = string(b)
	}
	s := summarise(runs, idles)
	s.write(os.Stdout, machine)
	if *pngPath != "" {
		if err := s.chart(*pngPath, machine); err != nil {
			log.Fatal(err)
		}
	}
}

func readCSV(path string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s: empty", path)
	}
	var rows []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, k := range recs[0] {
			if i < len(r) {
				m[k] = r[i]
			}
		}
		rows = append(rows, m)
	}
	return rows, nil
}

func num(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

func readRuns(path string) ([]run, error) {
	rows, err := readCSV(path)
	if err != nil {
		return nil, err
	}
	var out []run
	for _, m := range rows {
		r := run{
			round: int(num(m["round"])), mode: m["mode"], server: m["server"],
			rps: num(m["rps"]), cpuS: num(m["cpu_s"]), perCPU: num(m["req_per_cpu_s"]),
			p99: num(m["p99_ms"]), hasP99: m["p99_ms"] != "",
			steal: num(m["steal_pct"]), load1: num(m["load1"]), errors: int(num(m["errors"])),
			busyBefore: num(m["busy_before_pct"]), other: num(m["cpu0_other_pct"]),
		}
		out = append(out, r)
	}
	return out, nil
}

func readIdle(path string) ([]idle, error) {
	rows, err := readCSV(path)
	if err != nil {
		return nil, err
	}
	var out []idle
	for _, m := range rows {
		out = append(out, idle{
			server: m["server"], conns: int(num(m["connections"])),
			before: int(num(m["rss_before_kib"])), after: int(num(m["rss_after_kib"])),
			bytesPerConn: num(m["bytes_per_conn"]), fdsAdded: int(num(m["server_fds_added"])),
		})
	}
	return out, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// cell is the medians of one mode and server.
type cell struct {
	rps, perCPU, p99 float64
	hasP99           bool
	rounds           int
	// ratios of requests per CPU-second and of requests/s, each the
	// median over rounds of the ratio within a round; all the per-round
	// ratios of requests per CPU-second are kept for the range.
	cpuVsCeil, cpuVsFast, rpsVsCeil, rpsVsFast float64
	cpuVsCeilAll, cpuVsFastAll                 []float64
}

type summary struct {
	modes, servers []string
	cells          map[[2]string]*cell
	rounds         int
	steal, load    []float64
	busy, other    []float64
	errors         int
	errorRuns      []string
	idles          []idle
}

func summarise(runs []run, idles []idle) *summary {
	s := &summary{cells: map[[2]string]*cell{}, idles: idles}
	byKey := map[[3]string]run{} // mode, server, round
	for _, r := range runs {
		if !slices.Contains(s.modes, r.mode) {
			s.modes = append(s.modes, r.mode)
		}
		if !slices.Contains(s.servers, r.server) {
			s.servers = append(s.servers, r.server)
		}
		s.rounds = max(s.rounds, r.round)
		s.steal = append(s.steal, r.steal)
		s.load = append(s.load, r.load1)
		s.errors += r.errors
		s.busy = append(s.busy, r.busyBefore)
		s.other = append(s.other, r.other)
		if r.errors > 0 {
			s.errorRuns = append(s.errorRuns, fmt.Sprintf("round %d %s %s: %d", r.round, r.mode, r.server, r.errors))
		}
		byKey[[3]string{r.mode, r.server, strconv.Itoa(r.round)}] = r
	}
	order := []string{"loophttp", "api", "apireuse", "plaintext", "ceiling", "fasthttp", "hertz", "nbio", "nethttp"}
	slices.SortStableFunc(s.servers, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
	modeOrder := []string{"ka64", "ka256", "pipe16"}
	slices.SortStableFunc(s.modes, func(a, b string) int { return slices.Index(modeOrder, a) - slices.Index(modeOrder, b) })
	for _, mode := range s.modes {
		for _, srv := range s.servers {
			c := &cell{}
			var rps, per, p99, cc, cf, rc, rf []float64
			for round := 1; round <= s.rounds; round++ {
				r, ok := byKey[[3]string{mode, srv, strconv.Itoa(round)}]
				if !ok {
					continue
				}
				rps = append(rps, r.rps)
				per = append(per, r.perCPU)
				if r.hasP99 {
					p99 = append(p99, r.p99)
				}
				if ce, ok := byKey[[3]string{mode, "ceiling", strconv.Itoa(round)}]; ok && ce.perCPU > 0 {
					cc = append(cc, r.perCPU/ce.perCPU)
					rc = append(rc, r.rps/ce.rps)
				}
				if fa, ok := byKey[[3]string{mode, "fasthttp", strconv.Itoa(round)}]; ok && fa.perCPU > 0 {
					cf = append(cf, r.perCPU/fa.perCPU)
					rf = append(rf, r.rps/fa.rps)
				}
			}
			c.rounds = len(rps)
			c.rps, c.perCPU = median(rps), median(per)
			c.p99, c.hasP99 = median(p99), len(p99) > 0
			c.cpuVsCeil, c.cpuVsFast, c.rpsVsCeil, c.rpsVsFast = median(cc), median(cf), median(rc), median(rf)
			c.cpuVsCeilAll, c.cpuVsFastAll = cc, cf
			s.cells[[2]string{mode, srv}] = c
		}
	}
	return s
}

// thousands formats n with commas.
func thousands(n float64) string {
	s := strconv.FormatInt(int64(n+0.5), 10)
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}

func ratio(x float64, all []float64) string {
	if len(all) == 0 {
		return "–"
	}
	if len(all) == 1 {
		return fmt.Sprintf("%.2fx", x)
	}
	return fmt.Sprintf("%.2fx (%.2f–%.2f)", x, slices.Min(all), slices.Max(all))
}

func plain(x float64, ok bool) string {
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.2fx", x)
}

func title(m map[string]string, k string) string {
	if t, ok := m[k]; ok {
		return t
	}
	return k
}

func (s *summary) write(w io.Writer, machine string) {
	fmt.Fprintf(w, "Medians of %d interleaved rounds. Ratios: median over rounds of the ratio within a round "+
		"(range over rounds in brackets).\n\n", s.rounds)
	fmt.Fprintln(w, "| mode | server | requests/s | requests per server CPU-second | p99 | per CPU-s / ceiling | per CPU-s / fasthttp | req/s / ceiling | req/s / fasthttp |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, mode := range s.modes {
		for _, srv := range s.servers {
			c := s.cells[[2]string{mode, srv}]
			if c.rounds == 0 {
				continue
			}
			p99 := "–"
			if c.hasP99 {
				p99 = fmt.Sprintf("%.2f ms", c.p99)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", title(modeTitles, mode), title(serverTitles, srv),
				thousands(c.rps), thousands(c.perCPU), p99,
				ratio(c.cpuVsCeil, c.cpuVsCeilAll), ratio(c.cpuVsFast, c.cpuVsFastAll),
				plain(c.rpsVsCeil, len(c.cpuVsCeilAll) > 0), plain(c.rpsVsFast, len(c.cpuVsFastAll) > 0))
		}
	}
	if len(s.steal) > 0 {
		fmt.Fprintf(w, "\nSteal during the runs (share of all CPU time, from /proc/stat): median %.2f%%, max %.2f%%. "+
			"1-minute load at the start of a run: %.2f to %.2f. wrk errors (socket errors and non-2xx): %d.\n",
			median(s.steal), slices.Max(s.steal), slices.Min(s.load), slices.Max(s.load), s.errors)
		fmt.Fprintf(w, "The whole machine was %.0f%% busy (median; max %.0f%%) in the second before a run. "+
			"CPU 0 spent %.0f%% of a run (median; max %.0f%%) on anything but the server: other processes, "+
			"and interrupt time not charged to the server.\n",
			median(s.busy), slices.Max(s.busy), median(s.other), slices.Max(s.other))
		if len(s.errorRuns) > 0 {
			fmt.Fprintf(w, "Runs with wrk errors: %s.\n", strings.Join(s.errorRuns, "; "))
		}
	}

	if len(s.idles) > 0 {
		fmt.Fprintln(w, "\nResident memory per idle keep-alive connection (one request made on each):")
		fmt.Fprintln(w, "\n| server | connections | RSS before | RSS after | bytes per connection | server descriptors added |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
		for _, i := range s.idles {
			fmt.Fprintf(w, "| %s | %s | %s KiB | %s KiB | %s | %s |\n", title(serverTitles, i.server), thousands(float64(i.conns)),
				thousands(float64(i.before)), thousands(float64(i.after)), thousands(i.bytesPerConn), thousands(float64(i.fdsAdded)))
		}
	}

	s.writeTargets(w)
	if machine != "" {
		fmt.Fprintf(w, "\n```\n%s```\n", machine)
	}
}

// target is one of the throughput targets: a server's requests per server
// CPU-second over another's (fasthttp or the ceiling), in the modes whose
// name starts with modePrefix.
type target struct {
	server, modePrefix, vs string
	want                   float64
}

// targets are the throughput targets of the api and `loophttp serve`.
var targets = []target{
	{"api", "ka", "fasthttp", 1.0},
	{"api", "pipe", "fasthttp", 1.0},
	{"loophttp", "ka", "fasthttp", 1.05},
	{"loophttp", "ka", "ceiling", 0.9},
	{"loophttp", "pipe", "fasthttp", 1.3},
	{"loophttp", "pipe", "ceiling", 0.6},
}

// writeTargets prints the targets that the runs measured, and the memory
// target for loophttp's servers.
func (s *summary) writeTargets(w io.Writer) {
	fmt.Fprintln(w, "\nTargets (requests per server CPU-second, ratios as above; memory per idle connection):")
	fmt.Fprintln(w, "\n| target | measured | holds? |")
	fmt.Fprintln(w, "| --- | --- | --- |")
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	for _, t := range targets {
		for _, mode := range s.modes {
			c, ok := s.cells[[2]string{mode, t.server}]
			if !ok || c.rounds == 0 || !strings.HasPrefix(mode, t.modePrefix) {
				continue
			}
			v, all, vsName := c.cpuVsFast, c.cpuVsFastAll, "fasthttp"
			if t.vs == "ceiling" {
				v, all, vsName = c.cpuVsCeil, c.cpuVsCeilAll, "the ceiling"
			}
			if len(all) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s, %s: at least %.2fx %s | %s | %s |\n", title(serverTitles, t.server),
				title(modeTitles, mode), t.want, vsName, ratio(v, all), yes(v >= t.want))
		}
	}
	for _, i := range s.idles {
		if i.server == "loophttp" || i.server == "api" {
			fmt.Fprintf(w, "| %s: at most 1 KiB per idle connection | %s bytes | %s |\n", title(serverTitles, i.server),
				thousands(i.bytesPerConn), yes(i.bytesPerConn <= 1024))
		}
	}
}
