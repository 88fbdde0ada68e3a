#!/usr/bin/env bash
# Runs BenchmarkClient (client_test.go) in interleaved rounds: each round runs
# every client at every concurrency once, so that clients compared with each
# other are measured minutes apart at most on a shared machine. Prints, per
# server, concurrency and client, the median wall ns/op, process CPU ns/op,
# B/op and allocs/op, and the median over rounds of the ratio to fasthttp's
# HostClient and to fasthttp.Client within the round (range in brackets;
# above 1 means faster than that fasthttp client), by wall time and by CPU.
#
# Usage: benchmarks/client.sh [rounds] [benchtime] [bench regexp]
#   defaults: 5 rounds, 1s, BenchmarkClient (all servers)
# The raw `go test` output goes to OUT (default benchmarks/results/client.txt).
# Loopback only; every run is bounded by benchtime.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
rounds=${1:-5}
benchtime=${2:-1s}
bench=${3:-BenchmarkClient}
out=${OUT:-$here/results/client.txt}
mkdir -p "$(dirname "$out")"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go test -c -o "$bin/bench.test" .
{
  echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# steal ticks at start: $(awk '/^cpu /{print $9}' /proc/stat)"
} >"$out"
for round in $(seq "$rounds"); do
  "$bin/bench.test" -test.run '^$' -test.bench "$bench" -test.benchtime "$benchtime" -test.benchmem |
    awk -v r="$round" '/^Benchmark/{print "round=" r, $0}' | tee -a "$out" >&2
done
{
  echo "# end: $(date -u '+%Y-%m-%d %H:%M UTC'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# steal ticks at end: $(awk '/^cpu /{print $9}' /proc/stat)"
} >>"$out"

# name: BenchmarkClient/SERVER/CLIENT/cN-P, then N and value-unit pairs
awk '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  # ratio of the peer'"'"'s cost to this client'"'"'s within each round (above 1: this client is faster)
  function ratio(tab, k, pk,   m, r, x, lo, hi, q) {
    m = 0; lo = 1e9; hi = 0
    for (r = 1; r <= rounds; r++) if ((k, r) in tab && (pk, r) in tab && tab[k, r] > 0) {
      x = tab[pk, r] / tab[k, r]; q[++m] = x; if (x < lo) lo = x; if (x > hi) hi = x
    }
    return m ? sprintf("%.2fx (%.2f–%.2f)", median(q, m), lo, hi) : "–"
  }
  /^round=/ {
    r = substr($1, 7); split($2, p, "/"); srv = p[2]; cl = p[3]; c = p[4]; sub(/-[0-9]+$/, "", c)
    k = srv SUBSEP c SUBSEP cl
    for (i = 4; i < NF; i += 2) {
      if ($(i + 1) == "ns/op") ns[k, r] = $i
      if ($(i + 1) == "cpu-ns/op") cpu[k, r] = $i
      if ($(i + 1) == "B/op") bop[k] = $i
      if ($(i + 1) == "allocs/op") aop[k] = $i
    }
    if (!(k in seen)) { seen[k] = 1; keys[++nk] = k }
    if (r > rounds) rounds = r
  }
  END {
    print "| server | in flight | client | ns/op | requests/s | CPU ns/op | B/op | allocs/op | wall: vs HostClient | wall: vs fasthttp.Client | CPU: vs HostClient | CPU: vs fasthttp.Client |"
    print "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (i = 1; i <= nk; i++) {
      k = keys[i]; split(k, f, SUBSEP)
      n = 0; for (r = 1; r <= rounds; r++) if ((k, r) in ns) v[++n] = ns[k, r]
      med = median(v, n)
      n = 0; for (r = 1; r <= rounds; r++) if ((k, r) in cpu) w[++n] = cpu[k, r]
      cmed = n ? median(w, n) : 0
      h = f[1] SUBSEP f[2] SUBSEP "fasthttp"; t = f[1] SUBSEP f[2] SUBSEP "fasthttp-client"
      printf "| %s | %s | %s | %.0f | %.0f | %.0f | %s | %s | %s | %s | %s | %s |\n", f[1], substr(f[2], 2), f[3], med, 1e9 / med, cmed,
        bop[k], aop[k], ratio(ns, k, h), ratio(ns, k, t), ratio(cpu, k, h), ratio(cpu, k, t)
    }
  }' "$out"
