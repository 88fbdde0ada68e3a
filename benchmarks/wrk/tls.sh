#!/usr/bin/env bash
# HTTPS comparison of `loophttp serve` with fasthttp and net/http over
# crypto/tls (cmd/tlspeerd), all with the same ECDSA P-256 certificate made
# here, Go's default TLS settings (TLS 1.3, the suite and group the client
# and Go agree on), and ALPN http/1.1.
#
# Usage: benchmarks/wrk/tls.sh [rounds] [seconds]
#   rounds   interleaved rounds of every mode and server (default 3)
#   seconds  length of one measured run (default 5)
# Environment: SERVERS (default "loophttp fasthttp nethttp"), MODES
# (default "ka256 pipe16 hs"), OUT (default benchmarks/results/tls).
#
# Modes:
#   ka256   keep-alive, wrk -t1 -c256
#   pipe16  16-deep pipelining over 256 connections (wrk/pipeline.lua)
#   hs      full handshakes: `loophttp load -k -c 8 -H 'Connection: close'`
#           (one request per connection, no session reused)
# The server is pinned to CPU 0 and the client to CPU 1; each run records
# requests per second and requests per server CPU-second (utime + stime
# from /proc/PID/stat), and the summary gives each server's median and its
# ratio to fasthttp. Traffic goes to 127.0.0.1 only, every run is bounded
# in time, and every server started here is stopped on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(dirname "$here")
rounds=${1:-3}
secs=${2:-5}
servers=${SERVERS:-loophttp fasthttp nethttp}
modes=${MODES:-ka256 pipe16 hs}
out=${OUT:-$here/results/tls}
mkdir -p "$out"
for tool in wrk openssl taskset; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install -y wrk openssl util-linux)" >&2; exit 1; }
done

bin=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building" >&2
(cd "$repo" && go build -o "$bin/loophttp" ./cmd/loophttp)
(cd "$here" && go build -o "$bin/tlspeerd" ./cmd/tlspeerd)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
  -keyout "$bin/key.pem" -out "$bin/cert.pem" 2>/dev/null

start() { # NAME: sets pid and addr
  local cmd
  case $1 in
    loophttp) cmd=("$bin/loophttp" serve -addr 127.0.0.1:0 -loops 1 -quiet -tls-cert "$bin/cert.pem" -tls-key "$bin/key.pem") ;;
    fasthttp | nethttp) cmd=("$bin/tlspeerd" -impl "$1" -addr 127.0.0.1:0 -cert "$bin/cert.pem" -key "$bin/key.pem") ;;
    *) echo "unknown server $1" >&2; exit 1 ;;
  esac
  taskset -c 0 "${cmd[@]}" >"$bin/server.out" 2>&1 &
  pid=$!
  addr=
  for _ in $(seq 100); do
    addr=$(awk '/listening on/ {a=$NF; sub("^https?://", "", a); if (a ~ /^127\.0\.0\.1:[1-9]/) {print a; exit}}' "$bin/server.out")
    [ -n "$addr" ] && break
    sleep 0.05
  done
  [ -n "$addr" ] || { echo "$1 did not start:" >&2; cat "$bin/server.out" >&2; exit 1; }
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

run() { # MODE SECONDS: prints requests per second
  case $1 in
    ka256) taskset -c 1 wrk -t1 -c256 -d"$2s" "https://$addr/" | awk '/Requests\/sec/ {print $2}' ;;
    pipe16) taskset -c 1 wrk -t1 -c256 -d"$2s" -s "$here/wrk/pipeline.lua" "https://$addr/" -- 16 | awk '/Requests\/sec/ {print $2}' ;;
    hs) GOMAXPROCS=1 taskset -c 1 "$bin/loophttp" load -k -c 8 -d "$2s" -quiet -json -H 'Connection: close' "https://$addr/" |
      awk -F': ' '/"requests_per_second"/ {sub(",", "", $2); print $2}' ;;
    *) echo "unknown mode $1" >&2; exit 1 ;;
  esac
}

runs=$out/runs.csv
echo "round,mode,server,rps,cpu_s,req_per_cpu_s,load1" >"$runs"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "command: benchmarks/wrk/tls.sh $rounds $secs (SERVERS=\"$servers\" MODES=\"$modes\")"
  echo "go: $(go version)"
  echo "cpu: $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo), $(nproc) CPUs"
  echo "load at start: $(cat /proc/loadavg)"
} >"$out/machine.txt"

read -r -a srv <<<"$servers"
for round in $(seq "$rounds"); do
  for mode in $modes; do
    for i in "${!srv[@]}"; do
      name=${srv[$(((i + round) % ${#srv[@]}))]} # rotate the order each round
      start "$name"
      run "$mode" 1 >/dev/null # warm-up
      load=$(cut -d' ' -f1 /proc/loadavg)
      t0=$(cpu_ticks "$pid")
      rps=$(run "$mode" "$secs")
      t1=$(cpu_ticks "$pid")
      stop
      awk -v r="$round" -v m="$mode" -v n="$name" -v rps="${rps:-0}" -v t0="$t0" -v t1="$t1" -v hz="$hz" -v s="$secs" -v l="$load" \
        'BEGIN {cpu = (t1 - t0) / hz; printf "%d,%s,%s,%.0f,%.2f,%.0f,%s\n", r, m, n, rps, cpu, (cpu > 0 ? rps * s / cpu : 0), l}' | tee -a "$runs"
    done
  done
done

echo "load at end: $(cat /proc/loadavg)" >>"$out/machine.txt"
# Medians per mode and server, and the ratio to fasthttp's median.
awk -F, 'NR > 1 {k = $2 "," $3; v[k] = v[k] " " $6; r[k] = r[k] " " $4; ms[$2] = 1; ss[$3] = 1}
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    printf "| mode | server | requests/s | requests per server CPU-s | vs fasthttp |\n| --- | --- | ---: | ---: | ---: |\n"
    for (m in ms) for (s in ss) {
      k = m "," s
      if (!(k in v)) continue
      fk = m ",fasthttp"
      base = (fk in v) ? median(v[fk]) : 0
      ratio = (base > 0) ? sprintf("%.2fx", median(v[k]) / base) : "-"
      printf "| %s | %s | %.0f | %.0f | %s |\n", m, s, median(r[k]), median(v[k]), ratio
    }
  }' "$runs" | tee "$out/summary.md"
