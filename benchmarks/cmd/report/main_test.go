package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs.csv")
	idlePath := filepath.Join(dir, "idle.csv")
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(runs, `round,mode,server,rps,cpu_s,req_per_cpu_s,p99_ms,steal_pct,load1,errors
1,ka64,loophttp,90,1,90,1.00,0.00,1.0,0
1,ka64,ceiling,100,1,100,0.90,0.10,1.0,0
1,ka64,fasthttp,80,1,80,1.20,0.00,1.0,0
2,ka64,loophttp,95,1,95,1.00,0.00,1.0,0
2,ka64,ceiling,100,1,100,0.90,0.00,1.0,0
2,ka64,fasthttp,100,1,100,1.20,0.00,1.0,0
1,pipe16,loophttp,800,1,800,,0.00,1.0,0
1,pipe16,ceiling,1000,1,1000,,0.00,1.0,0
1,pipe16,fasthttp,500,1,500,,0.00,1.0,0
1,pipe16,api,450,1,450,,0.00,1.0,0
`)
	write(idlePath, `server,connections,open_s,rss_before_kib,rss_after_kib,bytes_per_conn,server_fds_added
loophttp,1000,0.1,1000,1900,922,1000
fasthttp,1000,0.1,1000,3000,2048,1000
`)
	r, err := readRuns(runs)
	if err != nil {
		t.Fatal(err)
	}
	idles, err := readIdle(idlePath)
	if err != nil {
		t.Fatal(err)
	}
	s := summarise(r, idles)
	c := s.cells[[2]string{"ka64", "loophttp"}]
	// per-round ratios to the ceiling 0.90 and 0.95, to fasthttp 1.125 and 0.95
	if c.rounds != 2 || c.rps != 92.5 || c.cpuVsCeil != 0.925 || c.cpuVsFast != (1.125+0.95)/2 {
		t.Fatalf("ka64 loophttp: %+v", c)
	}
	var out bytes.Buffer
	s.write(&out, "date: today\n")
	for _, want := range []string{
		"| keep-alive, 64 conns | loophttp serve | 93 | 93 | 1.00 ms | 0.93x (0.90–0.95) |",
		"| loophttp serve, pipelined 16, 256 conns: at least 0.60x the ceiling | 0.80x | yes |",
		"| loophttp serve, pipelined 16, 256 conns: at least 1.30x fasthttp | 1.60x | yes |",
		"| loophttp serve, keep-alive, 64 conns: at least 0.90x the ceiling | 0.93x (0.90–0.95) | yes |",
		"| loophttp serve, keep-alive, 64 conns: at least 1.05x fasthttp | 1.04x (0.95–1.12) | no |",
		"| loophttp api, default options, pipelined 16, 256 conns: at least 1.00x fasthttp | 0.90x | no |",
		"| loophttp serve: at most 1 KiB per idle connection | 922 bytes | yes |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	pngPath := filepath.Join(dir, "chart.png")
	if err := s.chart(pngPath, "date: today\n"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 2*panelW || b.Dy() != headerH+2*panelH {
		t.Fatalf("chart is %v", b)
	}
}
