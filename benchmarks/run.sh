#!/usr/bin/env bash
# End-to-end comparison of `loophttp serve`, the README's api server (default
# options) and the engine-level server with the gnet ceiling, fasthttp,
# CloudWeGo Hertz, nbio's nbhttp and net/http, all answering "Hello, World!"
# as text/plain, each peer configured as its maintainers do for throughput.
#
# Usage: benchmarks/run.sh [rounds] [seconds] [idle-connections]
#   rounds            interleaved rounds of every mode and server (default 5)
#   seconds           length of one measured wrk run (default 8)
#   idle-connections  connections for the memory measurement (default 10000; 0 skips it)
# Environment:
#   SERVERS  servers to run (default "loophttp api plaintext ceiling fasthttp
#            hertz nbio nethttp"; "api" is cmd/plaintext -api -loops 0, the
#            README's server with default options, "plaintext" the engine level;
#            "apireuse", not in the default list, is the same server with
#            Options.ReuseMessages, which shows what the default's
#            allocation per request costs)
#   MODES    modes to run (default "ka256 pipe16"; "ka64" is also known)
#   OUT      directory for the results (default benchmarks/results)
#   QUIET_BUSY, QUIET_WAIT  see below (default 25 %, 30 s)
#
# Needs only the repository, Go and apt (it installs wrk when missing). It
# builds every server, starts each on 127.0.0.1 port 0 (the kernel picks the
# port; the server prints it), pins the server to CPU 0 and wrk to CPU 1 with
# taskset, warms up for 1 s, then measures. Modes:
#   ka64    keep-alive, wrk -t1 -c64 with its default request
#   ka256   keep-alive, wrk -t1 -c256
#   pipe16  16-deep pipelining over 256 connections, the TechEmpower
#           plaintext request (wrk/pipeline.lua)
# Per run it records requests/s, the server's CPU time from /proc/PID/stat
# (utime + stime), requests per server CPU-second, wrk's p99, steal from
# /proc/stat, the 1-minute load, the share of CPU 0 not spent in the server,
# and how busy the machine was just before (each run first waits, up to
# QUIET_WAIT seconds, for the machine to be under QUIET_BUSY percent busy).
# Then, per server, the resident memory per idle keep-alive connection
# (cmd/idleconns). Finally cmd/report prints the table of medians and draws
# the chart. Traffic goes to 127.0.0.1 only; every
# run is bounded in time, and every server started here is stopped on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cd "$here"

rounds=${1:-5}
secs=${2:-8}
idle=${3:-10000}
servers=${SERVERS:-loophttp api plaintext ceiling fasthttp hertz nbio nethttp}
modes=${MODES:-ka256 pipe16}
out=${OUT:-$here/results}
mkdir -p "$out"

if ! command -v wrk >/dev/null; then
  echo "installing wrk" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed" >&2; exit 1; }
if [ "$(nproc)" -lt 2 ]; then echo "needs 2 CPUs (server on 0, wrk on 1)" >&2; exit 1; fi

bin=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building" >&2
(cd "$repo" && go build -o "$bin/loophttp" ./cmd/loophttp)
for c in ceiling fasthttpd hertzd nethttpd nbiod plaintext idleconns report; do
  go build -o "$bin/$c" "./cmd/$c"
done

# start NAME: starts the server pinned to CPU 0 on a kernel-chosen port;
# sets pid and addr.
start() {
  local cmd
  case $1 in
    loophttp) cmd=("$bin/loophttp" serve -addr 127.0.0.1:0 -loops 1 -quiet) ;;
    ceiling) cmd=("$bin/ceiling" -addr 127.0.0.1:0) ;;
    fasthttp) cmd=("$bin/fasthttpd" -addr 127.0.0.1:0) ;;
    hertz) cmd=("$bin/hertzd" -addr 127.0.0.1:0) ;;
    nethttp) cmd=("$bin/nethttpd" -addr 127.0.0.1:0) ;;
    nbio) cmd=("$bin/nbiod" -addr 127.0.0.1:0) ;;
    plaintext) cmd=("$bin/plaintext" -addr 127.0.0.1:0 -loops 1) ;;
    api) cmd=("$bin/plaintext" -api -addr 127.0.0.1:0 -loops 0) ;;
    apireuse) cmd=("$bin/plaintext" -api -reuse -addr 127.0.0.1:0 -loops 0) ;;
    *) echo "unknown server $1" >&2; exit 1 ;;
  esac
  : >"$bin/server.out"
  taskset -c 0 "${cmd[@]}" >"$bin/server.out" 2>&1 &
  pid=$!
  pids+=("$pid")
  addr=
  for _ in $(seq 100); do
    # the server's own line (gnet also logs one, with the port as given)
    addr=$(awk '/listening on/ && $NF ~ /^(http:\/\/)?[0-9.]+:[1-9][0-9]*$/ {a=$NF; sub("^http://", "", a); print a; exit}' "$bin/server.out")
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$addr" ]; then echo "$1 did not start:" >&2; cat "$bin/server.out" >&2; exit 1; fi
  case $addr in 127.0.0.1:*) ;; *) echo "$1 listens on $addr, not 127.0.0.1" >&2; exit 1 ;; esac
}

stop() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# steal and total ticks of all CPUs, then busy and total ticks of CPU 0
cpu_stat() {
  awk '/^cpu /{t=0; for (i=2; i<=NF; i++) t+=$i; s=$9; a=t}
       /^cpu0 /{t=0; for (i=2; i<=NF; i++) t+=$i; print s, a, t-$5-$6, t}' /proc/stat
}
# busy share of all CPUs (%) over one second
busy_pct() {
  local a b
  a=$(awk '/^cpu /{t=0; for (i=2; i<=NF; i++) t+=$i; print t-$5-$6, t}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu /{t=0; for (i=2; i<=NF; i++) t+=$i; print t-$5-$6, t}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN{split(a, x, " "); split(b, y, " "); printf "%.0f", (y[2] > x[2]) ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0}'
}
# quiet: before a run, wait (up to QUIET_WAIT seconds, default 30) while
# the machine is busier than QUIET_BUSY percent (default 25) with other
# work; sets busy to the last reading.
quiet() {
  local waited=0
  busy=$(busy_pct)
  while [ "$busy" -gt "${QUIET_BUSY:-25}" ] && [ "$waited" -lt "${QUIET_WAIT:-30}" ]; do
    busy=$(busy_pct)
    waited=$((waited + 1))
  done
}
hz=$(getconf CLK_TCK)
# steal_line: the steal ticks of all CPUs and their share of all ticks since boot
steal_line() {
  awk '/^cpu /{t=0; for (i=2; i<=NF; i++) t+=$i; printf "%d ticks of %d (%.2f%% since boot)", $9, t, 100 * $9 / t}' /proc/stat
}

wrk_run() { # mode seconds url
  case $1 in
    ka64) taskset -c 1 wrk -t1 -c64 -d"$2s" --latency "$3" ;;
    ka256) taskset -c 1 wrk -t1 -c256 -d"$2s" --latency "$3" ;;
    pipe16) taskset -c 1 wrk -t1 -c256 -d"$2s" -s "$here/wrk/pipeline.lua" "$3" -- 16 ;;
    *) echo "unknown mode $1" >&2; exit 1 ;;
  esac
}

runs=$out/runs.csv
echo "round,mode,server,rps,cpu_s,req_per_cpu_s,p99_ms,steal_pct,load1,errors,busy_before_pct,cpu0_other_pct" >"$runs"

measure() { # round mode server
  local round=$1 mode=$2 name=$3 t0 t1 st0 st1 load wout busy
  quiet
  start "$name"
  wrk_run "$mode" 1 "http://$addr/" >/dev/null # warm-up
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(cpu_ticks "$pid"); st0=$(cpu_stat)
  wout=$(wrk_run "$mode" "$secs" "http://$addr/")
  t1=$(cpu_ticks "$pid"); st1=$(cpu_stat)
  stop
  awk -v round="$round" -v mode="$mode" -v name="$name" -v t0="$t0" -v t1="$t1" -v hz="$hz" \
    -v secs="$secs" -v st0="$st0" -v st1="$st1" -v load="$load" -v busy="$busy" '
    function ms(v) {
      if (v ~ /us$/) return v / 1000
      if (v ~ /ms$/) return v + 0
      if (v ~ /s$/) return v * 1000
      return v
    }
    /Requests\/sec/ { rps = $2 }
    $1 == "99%" { p99 = sprintf("%.2f", ms($2)) }
    /Socket errors/ { gsub(",", ""); errs += $4 + $6 + $8 + $10 }
    /Non-2xx/ { errs += $NF }
    END {
      split(st0, a, " "); split(st1, b, " ")
      cpu = (t1 - t0) / hz
      steal = (b[2] > a[2]) ? 100 * (b[1] - a[1]) / (b[2] - a[2]) : 0
      # CPU 0 busy with anything but the server (other processes, and
      # interrupt time not charged to the server)
      other = (b[4] > a[4]) ? 100 * ((b[3] - a[3]) - (t1 - t0)) / (b[4] - a[4]) : 0
      printf "%d,%s,%s,%.0f,%.2f,%.0f,%s,%.2f,%s,%d,%s,%.0f\n", round, mode, name, rps, cpu,
        (cpu > 0 ? rps * secs / cpu : 0), (p99 == "" ? "" : p99), steal, load, errs + 0, busy, (other < 0 ? 0 : other)
    }' <<<"$wout" | tee -a "$runs"
}

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "command: benchmarks/run.sh $rounds $secs $idle (SERVERS=\"$servers\" MODES=\"$modes\" QUIET_BUSY=${QUIET_BUSY:-25} QUIET_WAIT=${QUIET_WAIT:-30})"
  echo "go: $(go version)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo), $(nproc) CPUs"
  echo "wrk: $(wrk -v 2>&1 | head -1)"
  echo "load at start: $(cat /proc/loadavg)"
  echo "steal at start: $(steal_line)"
} >"$out/machine.txt"
n_runs=$(( rounds * $(wc -w <<<"$modes") * $(wc -w <<<"$servers") ))
echo "$n_runs runs of about $((secs + 3)) s each, then the idle-memory runs" >&2

read -r -a srv <<<"$servers"
for round in $(seq "$rounds"); do
  for mode in $modes; do
    # rotate the order each round so that no server always goes first
    n=${#srv[@]}
    for i in $(seq 0 $((n - 1))); do
      measure "$round" "$mode" "${srv[$(((i + round - 1) % n))]}"
    done
  done
done

idlecsv=$out/idle.csv
echo "server,connections,open_s,rss_before_kib,rss_after_kib,bytes_per_conn,server_fds_added" >"$idlecsv"
if [ "$idle" -gt 0 ]; then
  if [ "$(ulimit -n)" -lt $((idle + 100)) ]; then
    ulimit -n $((idle + 100)) || { echo "ulimit -n is below $((idle + 100))" >&2; exit 1; }
  fi
  for name in "${srv[@]}"; do
    start "$name"
    line=$(taskset -c 1 "$bin/idleconns" -addr "$addr" -pid "$pid" -n "$idle" -settle 2s)
    stop
    echo "$name $line" >&2
    awk -v name="$name" '{
      for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      printf "%s,%s,%s,%s,%s,%s,%s\n", name, v["connections"], v["open_s"], v["rss_before_kib"],
        v["rss_after_kib"], v["bytes_per_conn"], v["server_fds_added"]
    }' <<<"$line" >>"$idlecsv"
  done
fi
{
  echo "load at end: $(cat /proc/loadavg)"
  echo "steal at end: $(steal_line)"
  echo "end: $(date -u '+%Y-%m-%d %H:%M UTC')"
} >>"$out/machine.txt"

"$bin/report" -runs "$runs" -idle "$idlecsv" -machine "$out/machine.txt" -png "$out/chart.png" | tee "$out/summary.md"
