#!/usr/bin/env bash
# Shoal's demo: a three-node cluster on this machine. Each node is a network namespace with
# its own address (10.210.0.1-3, on a bridge in a namespace of the demo's own) running a
# `shoal agent` that gossips with the others; all share one private containerd (each node in
# its own containerd namespace) and follow one local Git repository made from
# examples/manifests. The example images are built and served on 127.0.0.1:5000 and put
# into each node's image store, since the nodes' namespaces cannot reach this host's loopback.
#
#   examples/demo/demo.sh up        (make demo)
#   examples/demo/demo.sh kill N    SIGKILL node N's agent and containers: watch its work move
#   examples/demo/demo.sh revive N  start node N again
#   examples/demo/demo.sh down      (make demo-down)
#
# Everything lives under $SHOAL_DEMO_DIR (default /var/tmp/shoal-demo); nothing touches the
# system containerd. Needs root (containerd and runc need it).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
demo=${SHOAL_DEMO_DIR:-/var/tmp/shoal-demo}
export PATH=/usr/local/go/bin:$PATH
ctd=$demo/containerd
sock=$ctd/c.sock
registry=127.0.0.1:5000
net=10.210.0
nodes="1 2 3"
key=$(printf 'shoal-demo-gossip-key-32-bytes!!' | base64)
# The three agents share one API token, made by the first to start; the CLI reads it.
export SHOAL_TOKEN_FILE=$demo/api-token

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

running() { [ -f "$demo/$1.pid" ] && kill -0 "$(cat "$demo/$1.pid")" 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
	local until=$((SECONDS + $1)) what=$2
	shift 2
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $until ]; then
			echo "demo: timed out waiting for $what" >&2
			return 1
		fi
		sleep 0.2
	done
}

install_packages() {
	local need=()
	for cmd in git:git containerd:containerd runc:runc ctr:containerd curl:curl ip:iproute2 dig:dnsutils; do
		command -v "${cmd%%:*}" >/dev/null || need+=("${cmd##*:}")
	done
	if [ ${#need[@]} -gt 0 ]; then
		say "installing ${need[*]} (apt)"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	fi
}

start_containerd() {
	running containerd && return
	say "starting a private containerd on $sock"
	mkdir -p "$ctd"
	cat >"$ctd/config.toml" <<EOF
version = 2
root = "$ctd/root"
state = "$ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$ctd/opt"
EOF
	setsid containerd --config "$ctd/config.toml" >"$ctd/containerd.log" 2>&1 </dev/null &
	echo $! >"$demo/containerd.pid"
	wait_for 30 containerd ctr -a "$sock" version
}

start_registry() {
	running registry && return
	say "building the example images and serving them on $registry"
	(cd "$top" && go build -o "$demo/bin/build-images" ./examples/cmd/build-images)
	setsid "$demo/bin/build-images" --serve --registry "$registry" >"$demo/registry.log" 2>&1 </dev/null &
	echo $! >"$demo/registry.pid"
	wait_for 120 "the images" grep -q "serving registry" "$demo/registry.log"
}

make_repo() {
	[ -d "$demo/repo/.git" ] && return
	say "creating the Git repository $demo/repo from examples/manifests"
	mkdir -p "$demo/repo"
	cp -r "$top/examples/manifests/." "$demo/repo/"
	git -C "$demo/repo" init -q -b main
	git -C "$demo/repo" add -A
	git -C "$demo/repo" -c user.name=demo -c user.email=demo@shoal.invalid commit -q -m "examples"
}

make_network() {
	ip netns list | grep -q '^shoal-demo-hub' && return
	say "creating the demo network $net.0/24 (namespaces shoal-demo-hub, shoal-demo-node1..3)"
	ip netns add shoal-demo-hub
	ip -n shoal-demo-hub link set lo up
	ip -n shoal-demo-hub link add br0 type bridge
	ip -n shoal-demo-hub link set br0 up
	ip link add shoal-demo type veth peer name shoal-demo-p
	ip link set shoal-demo-p netns shoal-demo-hub
	ip -n shoal-demo-hub link set shoal-demo-p master br0 up
	ip addr add $net.254/24 dev shoal-demo
	ip link set shoal-demo up
	for i in $nodes; do
		ip netns add shoal-demo-node$i
		ip -n shoal-demo-node$i link set lo up
		ip link add sd$i-in type veth peer name sd$i-out
		ip link set sd$i-in netns shoal-demo-node$i
		ip link set sd$i-out netns shoal-demo-hub
		ip -n shoal-demo-hub link set sd$i-out master br0 up
		ip -n shoal-demo-node$i addr add $net.$i/24 dev sd$i-in
		ip -n shoal-demo-node$i link set sd$i-in up
	done
}

pull_images() {
	for i in $nodes; do
		for tag in v1 v2; do
			ctr -a "$sock" -n shoal-demo-node$i images pull --plain-http $registry/hello:$tag >/dev/null
		done
	done
}

start_node() {
	local i=$1
	running node$i && return
	# nsenter enters only the node's network namespace: `ip netns exec` would also give the
	# agent a mount namespace of its own, hiding its Secret tmpfs mounts from containerd.
	SHOAL_WEBHOOK_SECRET=demo SHOAL_GOSSIP_KEY=$key setsid nsenter --net=/var/run/netns/shoal-demo-node$i -- "$demo/bin/shoal" agent \
		--node node$i --repo "$demo/repo" --state-dir "$demo/state/node$i" \
		--containerd-socket "$sock" --containerd-namespace shoal-demo-node$i \
		--netns /var/run/netns/shoal-demo-node$i --listen $net.$i:7070 --api-token-file "$SHOAL_TOKEN_FILE" \
		--gossip-bind $net.$i:7946 --join $net.1:7946 --dns-listen $net.$i:53 \
		--ca-cert "$demo/ca/ca.crt" --node-cert "$demo/certs/node$i/node.crt" --node-key "$demo/certs/node$i/node.key" \
		--label topology.kubernetes.io/zone=zone-$((i % 2)) \
		--cpu 1 --memory 1Gi --poll-interval 2s --crash-backoff 2s \
		>"$demo/node$i.log" 2>&1 </dev/null &
	echo $! >"$demo/node$i.pid"
}

# make_certs creates the demo cluster's CA and a certificate per node (once): gossip
# accepts a node's records only when that node signed them (docs/cluster-identity.md).
make_certs() {
	[ -f "$demo/ca/ca.crt" ] || "$demo/bin/shoal" ca init --dir "$demo/ca" >/dev/null
	for i in $nodes; do
		[ -f "$demo/certs/node$i/node.crt" ] ||
			"$demo/bin/shoal" ca issue --ca-dir "$demo/ca" --node node$i --ip $net.$i --out "$demo/certs/node$i" >/dev/null
	done
}

start_agents() {
	say "starting three agents (APIs on $net.1-3:7070)"
	(cd "$top" && make -s build)
	cp "$top/bin/shoal" "$demo/bin/shoal"
	make_certs
	for i in $nodes; do start_node $i; done
	wait_for 90 "every node to converge (a rejected head commit in $demo/repo? see $demo/node*.log)" sh -c "for i in $nodes; do '$demo/bin/shoal' status --addr $net.\$i:7070 -o json | grep -q '\"converged\": true' || exit 1; done"
}

kill_node() {
	local i=$1
	say "SIGKILL node$i's agent and its containers"
	kill -9 "$(cat "$demo/node$i.pid")" 2>/dev/null || true
	for id in $(ctr -a "$sock" -n shoal-demo-node$i tasks ls -q 2>/dev/null); do
		ctr -a "$sock" -n shoal-demo-node$i tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
	done
	rm -f "$demo/node$i.pid"
}

up() {
	[ "$(id -u)" = 0 ] || { echo "demo: run as root (containerd needs it)" >&2; exit 1; }
	mkdir -p "$demo/bin"
	install_packages
	start_containerd
	start_registry
	pull_images
	make_repo
	make_network
	start_agents
	"$demo/bin/shoal" status --addr $net.1:7070
	cat <<EOF

A three-node Shoal cluster is running. Try:

  export SHOAL_TOKEN_FILE=$SHOAL_TOKEN_FILE           # the agents' API token
  $demo/bin/shoal status --addr $net.1:7070        # nodes, revision, workloads, instances
  curl -s $net.1:8080 ; curl -s $net.2:8080        # hello on every node
  curl -s $net.X:8081        # the frontend (X: the node status shows), calling http://backend:9090/
  dig +short @$net.1 backend.default.svc.cluster.local   # the ready backends
  $demo/bin/shoal explain backend --addr $net.1:7070     # why each replica runs where it does
  $demo/bin/shoal logs hello --addr $net.2:7070

  cd $demo/repo
  sed -i 's/hello:v1/hello:v2/' hello.yaml && git commit -qam "hello v2"   # rolls within ~2s
  git revert --no-edit HEAD                                                 # and back
  echo 'kind: [broken' > bad.yaml && git add bad.yaml && git commit -qm bad # refused, file:line in status

  $0 kill 3      # SIGKILL node3 and its containers; its work moves within seconds
  $0 revive 3    # bring it back

Logs: $demo/node1.log … node3.log. Stop everything with: make demo-down
EOF
}

down() {
	for i in $nodes; do
		if running node$i; then
			say "stopping node$i"
			kill "$(cat "$demo/node$i.pid")"
		fi
	done
	if running containerd; then
		say "removing the demo's containers"
		for i in $nodes; do
			ns=shoal-demo-node$i
			for id in $(ctr -a "$sock" -n "$ns" containers ls -q 2>/dev/null); do
				ctr -a "$sock" -n "$ns" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
			done
			sleep 1
			for id in $(ctr -a "$sock" -n "$ns" containers ls -q 2>/dev/null); do
				ctr -a "$sock" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 || true
				ctr -a "$sock" -n "$ns" containers delete "$id" >/dev/null 2>&1 || true
			done
		done
		say "stopping containerd"
		kill "$(cat "$demo/containerd.pid")"
		wait_for 15 "containerd to stop" sh -c "! kill -0 $(cat "$demo/containerd.pid")"
	fi
	if running registry; then
		say "stopping the registry"
		kill "$(cat "$demo/registry.pid")"
	fi
	if ip netns list | grep -q '^shoal-demo-hub'; then
		say "removing the demo network"
		ip link del shoal-demo 2>/dev/null || true
		for n in hub node1 node2 node3; do ip netns del shoal-demo-$n 2>/dev/null || true; done
	fi
	grep -o " $demo[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -f "$demo"/*.pid
	say "stopped; $demo is left for inspection (rm -rf it to start afresh)"
}

case "${1:-up}" in
up) up ;;
down) down ;;
kill) kill_node "${2:?node number}" ;;
revive)
	start_node "${2:?node number}"
	say "node$2 started"
	;;
*)
	echo "usage: $0 up|down" >&2
	exit 2
	;;
esac
