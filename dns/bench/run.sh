#!/usr/bin/env bash
# Compares Shoal's DNS server with CoreDNS's hosts plugin on the same 1,000 services × 3
# ready instances (A records), under dnsperf, on loopback only.
#
# Each round runs, for each server in turn: an unthrottled dnsperf run (queries/s), then a
# run held at QPS queries/s whose per-query latencies give the p99. Rounds alternate the two
# servers so that noise from other work on the machine falls on both. Every dnsperf run
# lasts DURATION seconds (at most 10).
#
# Needs: go, dnsperf (apt-get install dnsperf), and the Go module proxy to build a slim
# CoreDNS (coremain + the bind and hosts plugins, pinned below) in a directory outside the
# repository, cached between runs.
#
# Usage: dns/bench/run.sh            (from the repository root)
#        ROUNDS=5 DURATION=5 QPS=20000 PIN=1 dns/bench/run.sh
set -euo pipefail

COREDNS_VERSION=v1.14.7
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
QPS=${QPS:-20000}
COREDNS_PORT=${COREDNS_PORT:-15354}
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal-dnsbench}
export PATH=/usr/local/go/bin:$PATH
# PIN=1 puts the servers on CPU 1 (with GOMAXPROCS=1, for both: each is a Go program) and
# dnsperf on CPU 0, so that the load generator does not compete with the server measured.
if [[ ${PIN:-0} == 1 ]]; then
	SERVER_CPU="taskset -c 1 env GOMAXPROCS=1" CLIENT_CPU="taskset -c 0"
else
	SERVER_CPU="" CLIENT_CPU=""
fi

(( DURATION <= 10 )) || { echo "DURATION is at most 10 seconds" >&2; exit 2; }
command -v dnsperf >/dev/null || { echo "dnsperf missing: apt-get install dnsperf" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# A slim CoreDNS: only the plugins this comparison uses.
coredns=$CACHE/coredns-$COREDNS_VERSION
if [[ ! -x $coredns ]]; then
	echo "building CoreDNS $COREDNS_VERSION (bind, hosts) in $CACHE/src …" >&2
	mkdir -p "$CACHE/src"
	cat >"$CACHE/src/main.go" <<'EOF'
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/hosts"
)

func init() { dnsserver.Directives = []string{"bind", "hosts"} }

func main() { coremain.Run() }
EOF
	(
		cd "$CACHE/src"
		[[ -f go.mod ]] || go mod init corednsbench >/dev/null 2>&1
		go get "github.com/coredns/coredns@$COREDNS_VERSION" >/dev/null
		go mod tidy >/dev/null 2>&1
		CGO_ENABLED=0 go build -o "$coredns" .
	)
fi

# Shoal's server; it also writes the hosts file and the query file.
(cd "$repo" && CGO_ENABLED=0 go build -o "$work/shoal-dnsbench" ./dns/bench)
$SERVER_CPU "$work/shoal-dnsbench" -addr 127.0.0.1:0 -hosts "$work/hosts" -queries "$work/queries" >"$work/shoal.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q '^listening' "$work/shoal.out" && break; sleep 0.1; done
shoal_port=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$work/shoal.out")
[[ -n $shoal_port ]] || { cat "$work/shoal.out" >&2; exit 1; }

cat >"$work/Corefile" <<EOF
cluster.local:$COREDNS_PORT {
	bind 127.0.0.1
	hosts $work/hosts cluster.local {
		ttl 5
		reload 0
	}
}
EOF
$SERVER_CPU "$coredns" -quiet -conf "$work/Corefile" >"$work/coredns.out" 2>&1 &
pids+=($!)

# Both must answer the same name before measuring.
probe=$(head -1 "$work/queries")
for port in "$shoal_port" "$COREDNS_PORT"; do
	for _ in $(seq 50); do
		echo "$probe" | dnsperf -s 127.0.0.1 -p "$port" -n 1 -t 1 2>/dev/null | grep -q 'NOERROR 1 ' && continue 2
		sleep 0.1
	done
	echo "server on port $port does not answer" >&2; cat "$work/coredns.out" >&2; exit 1
done

# qps PORT: unthrottled queries per second.
qps() {
	$CLIENT_CPU dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -l "$DURATION" -c 4 -q 200 2>&1 |
		awk '/Queries per second:/ {printf "%.0f", $4}'
}
# p99 PORT: 99th percentile latency in milliseconds at QPS queries per second, and the
# share of queries lost.
p99() {
	$CLIENT_CPU dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -l "$DURATION" -Q "$QPS" -c 4 -q 200 -v >"$work/verbose" 2>&1 || true
	awk '/^> / {print $NF}' "$work/verbose" | sort -g | awk '{v[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; printf "%.3f", v[i]*1000}'
	awk '/Queries lost:/ {printf " (lost %s)", $3}' "$work/verbose"
}

printf '%-6s %-8s %12s %22s\n' round server "queries/s" "p99 ms @ $QPS qps"
declare -a shoal_qps coredns_qps
for round in $(seq "$ROUNDS"); do
	for server in shoal coredns; do
		port=$shoal_port
		[[ $server == coredns ]] && port=$COREDNS_PORT
		q=$(qps "$port")
		p=$(p99 "$port")
		printf '%-6s %-8s %12s %22s\n' "$round" "$server" "$q" "$p"
		if [[ $server == shoal ]]; then shoal_qps+=("$q"); else coredns_qps+=("$q"); fi
	done
done

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
s=$(median "${shoal_qps[@]}")
c=$(median "${coredns_qps[@]}")
echo "median queries/s: shoal $s, coredns $c, ratio $(awk -v s="$s" -v c="$c" 'BEGIN {printf "%.2f", s/c}')"
