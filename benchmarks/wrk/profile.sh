#!/usr/bin/env bash
# Profiles one of loophttp's servers under wrk and prints its CPU time per
# request split by piece (cmd/budget): system calls, the codec's parse, the
# engine, the api, allocation and the garbage collector, gnet, the poller.
#
# Usage: benchmarks/wrk/profile.sh [server] [mode] [seconds]
#   server   loophttp (`loophttp serve -loops 1 -quiet`, the default), api
#            (cmd/plaintext -api -loops 0: the README's server, default
#            options) or plaintext (the engine level)
#   mode     pipe16 (default: 16-deep pipelining over 256 connections, the
#            TechEmpower request) or ka256 (keep-alive, 256 connections)
#   seconds  length of the wrk run (default 10)
# The server is pinned to CPU 0 and wrk to CPU 1 with taskset, as in run.sh;
# the server's CPU time is read from /proc/PID/stat (utime + stime) around the
# run, and its write and read system calls from /proc/PID/io. The profile
# and the binary stay in OUT (default: a temporary directory, printed) for
# `go tool pprof`. Loopback only, bounded in time; the server is stopped on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(dirname "$here")
server=${1:-loophttp}
mode=${2:-pipe16}
secs=${3:-10}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

(cd "$repo" && go build -o "$out/loophttp" ./cmd/loophttp)
(cd "$here" && go build -o "$out/plaintext" ./cmd/plaintext && go build -o "$out/budget" ./cmd/budget)
prof=$out/$server-$mode.prof
case $server in
  loophttp) bin=$out/loophttp; cmd=("$bin" serve -addr 127.0.0.1:0 -loops 1 -quiet -cpuprofile "$prof") ;;
  api) bin=$out/plaintext; cmd=("$bin" -api -loops 0 -addr 127.0.0.1:0 -cpuprofile "$prof") ;;
  plaintext) bin=$out/plaintext; cmd=("$bin" -loops 1 -addr 127.0.0.1:0 -cpuprofile "$prof") ;;
  *) echo "unknown server $server" >&2; exit 1 ;;
esac
taskset -c 0 "${cmd[@]}" >"$out/server.out" 2>&1 &
pid=$!
trap 'kill -INT $pid 2>/dev/null || true' EXIT
addr=
for _ in $(seq 100); do
  addr=$(awk '/listening on/ && $NF ~ /[0-9]+$/ {a=$NF; sub("^http://", "", a); print a; exit}' "$out/server.out")
  [ -n "$addr" ] && break
  sleep 0.05
done
[ -n "$addr" ] || { echo "$server did not start:" >&2; cat "$out/server.out" >&2; exit 1; }
case $mode in
  pipe16) load=(wrk -t1 -c256 -d"${secs}s" -s "$here/wrk/pipeline.lua" "http://$addr/" -- 16) ;;
  ka256) load=(wrk -t1 -c256 -d"${secs}s" "http://$addr/") ;;
  *) echo "unknown mode $mode" >&2; exit 1 ;;
esac
t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
io0=$(awk '/^syscr|^syscw/{printf "%s ", $2}' "/proc/$pid/io")
wout=$(taskset -c 1 "${load[@]}")
t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
io1=$(awk '/^syscr|^syscw/{printf "%s ", $2}' "/proc/$pid/io")
kill -INT "$pid"
wait "$pid" || true
trap - EXIT
rps=$(awk '/Requests\/sec/{print $2}' <<<"$wout")
read -r ns per <<<"$(awk -v r="$rps" -v s="$secs" -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" \
  'BEGIN{n = r * s; c = (b - a) / hz; printf "%.0f %.0f", c * 1e9 / n, n / c}')"
echo "$server, $mode: $rps requests/s, $per requests per server CPU-second, $ns ns of server CPU per request"
awk -v a="$io0" -v b="$io1" -v r="$rps" -v s="$secs" 'BEGIN{split(a, x, " "); split(b, y, " "); n = r * s;
  printf "system calls per request: %.3f reads, %.3f writes\n", (y[1] - x[1]) / n, (y[2] - x[2]) / n}'
go tool pprof -traces "$bin" "$prof" 2>/dev/null | "$out/budget" -ns "$ns"
echo "profile: $prof (binary $bin)"
