#!/usr/bin/env bash
# Runs wrk against loophttp's plaintext server (engine + poller, trivial
# handler), the same answer through the Node-style api layer, and the gnet
# ceiling server, interleaved, each pinned to CPU 0
# with wrk on CPU 1. Prints requests/s, server CPU seconds, requests per
# server CPU second, and steal, per run. Loopback only; every run is bounded.
#
# Usage: benchmarks/wrk/engine-vs-ceiling.sh [rounds] [seconds]
# SERVERS (default "plaintext api ceiling") picks the servers.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-10}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/plaintext" ./cmd/plaintext
go build -o "$bin/ceiling" ./cmd/ceiling

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
steal() { awk '/^cpu /{print $9}' /proc/stat; }

run() { # name port mode
  local name=$1 port=$2 mode=$3 pid out
  case $name in
    plaintext) taskset -c 0 "$bin/plaintext" -addr "127.0.0.1:$port" -loops 1 >/dev/null & ;;
    api) taskset -c 0 "$bin/plaintext" -api -addr "127.0.0.1:$port" -loops 1 >/dev/null & ;;
    ceiling) taskset -c 0 "$bin/ceiling" -addr "127.0.0.1:$port" >/dev/null & ;;
  esac
  pid=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  local t0 s0; t0=$(cpu_ticks $pid); s0=$(steal)
  if [ "$mode" = keepalive ]; then
    out=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" --latency "http://127.0.0.1:$port/")
  else
    out=$(taskset -c 1 wrk -t1 -c256 -d"${secs}s" -s wrk/pipeline.lua "http://127.0.0.1:$port/plaintext" -- 16)
  fi
  local t1 s1; t1=$(cpu_ticks $pid); s1=$(steal)
  kill $pid; wait $pid 2>/dev/null || true
  local rps errs p99 cpu
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/{print}' <<<"$out" | tr '\n' ' ')
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (b-a)/hz}')
  printf '%-9s %-9s rps=%-10s cpu_s=%-6s rps_per_cpu_s=%-10s p99=%-8s steal_ticks=%s %s\n' \
    "$name" "$mode" "$rps" "$cpu" "$(awk -v r="$rps" -v c="$cpu" -v s="$secs" 'BEGIN{printf "%.0f", r*s/c}')" "${p99:--}" "$((s1 - s0))" "$errs"
}

port=18080
for round in $(seq "$rounds"); do
  for mode in keepalive pipeline16; do
    for name in ${SERVERS:-plaintext api ceiling}; do
      port=$((port + 1))
      run "$name" "$port" "$mode"
    done
  done
done
