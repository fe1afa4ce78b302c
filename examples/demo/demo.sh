#!/usr/bin/env bash
# Shoal's demo: a three-node cluster on this machine. Each node is a network namespace with
# its own address (10.210.0.1-3, on a bridge in a namespace of the demo's own, which this
# machine reaches from 10.210.0.254) running a `shoal agent` that gossips with the others;
# all share one private containerd (each node in its own containerd namespace) and follow
# one local Git repository made from examples/manifests. Each instance gets an address of
# its own from its node's pod subnet, nodes reach each other's instances over VXLAN, and
# Services are virtual IPs; the NodePort Services answer on every node's address.
#
# The example images are built into a registry that this machine serves on 127.0.0.1:5000,
# the name the manifests use, and on 10.210.0.254:5000; in each node's namespace a forwarder
# listens on 127.0.0.1:5000 and relays to the latter, so whatever a user pushes to
# 127.0.0.1:5000 the nodes pull by that same name.
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
registry_bridge=$net.254:5000 # the same registry, where the nodes reach it
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

# packages are what the demo needs, as WHAT:PACKAGE: a command, or a file by its absolute
# path, and the Debian package that provides it. The pod network needs the CNI plugins, and
# their portmap plugin (hostPorts) needs iptables.
packages="git:git containerd:containerd runc:runc ctr:containerd curl:curl ip:iproute2 dig:dnsutils
	nsenter:util-linux iptables:iptables /usr/lib/cni/bridge:containernetworking-plugins"

install_packages() {
	local need=() what
	for p in $packages; do
		what=${p%%:*}
		case $what in
		/*) [ -e "$what" ] ;;
		*) command -v "$what" >/dev/null ;;
		esac || need+=("${p##*:}")
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
	say "building the example images and serving them on $registry and $registry_bridge"
	(cd "$top" && go build -o "$demo/bin/build-images" ./examples/cmd/build-images &&
		go build -o "$demo/bin/forward" ./examples/cmd/forward &&
		go build -o "$demo/bin/crane" github.com/google/go-containerregistry/cmd/crane)
	setsid "$demo/bin/build-images" --serve --registry "$registry" --also-listen "$registry_bridge" \
		>"$demo/registry.log" 2>&1 </dev/null &
	echo $! >"$demo/registry.pid"
	wait_for 120 "the images" grep -q "serving registry" "$demo/registry.log"
}

# start_forwarders relays each node's 127.0.0.1:5000 to the registry on the bridge side.
# They belong to the node's namespace, not to its agent: `kill N` leaves them running.
start_forwarders() {
	for i in $nodes; do
		running forward-node$i && continue
		setsid nsenter --net=/var/run/netns/shoal-demo-node$i -- "$demo/bin/forward" --listen "$registry" --to "$registry_bridge" \
			>"$demo/forward-node$i.log" 2>&1 </dev/null &
		echo $! >"$demo/forward-node$i.pid"
	done
	for i in $nodes; do
		wait_for 10 "node$i's registry forwarder" nsenter --net=/var/run/netns/shoal-demo-node$i -- curl -sf "http://$registry/v2/"
	done
}

# make_repo creates the cluster's Git repository with an empty first commit; the examples
# come in a second one (deploy_examples), once every node has joined.
make_repo() {
	[ -d "$demo/repo/.git" ] && return
	say "creating the Git repository $demo/repo"
	mkdir -p "$demo/repo"
	git -C "$demo/repo" init -q -b main
	git -C "$demo/repo" config user.name demo
	git -C "$demo/repo" config user.email demo@shoal.invalid
	git -C "$demo/repo" commit -q --allow-empty -m "an empty cluster"
}

# deploy_examples commits examples/manifests, unless an earlier `up` did. Committing after
# the three nodes have joined spreads the first placement over all of them: running
# instances stay where they are when a node joins later.
deploy_examples() {
	[ "$(git -C "$demo/repo" rev-list --count HEAD)" -gt 1 ] && return
	say "committing examples/manifests to $demo/repo"
	cp -r "$top/examples/manifests/." "$demo/repo/"
	git -C "$demo/repo" add -A
	git -C "$demo/repo" commit -q -m "examples"
}

# all_nodes CHECK ARGS...: CHECK succeeds with each node's `shoal status -o json` on stdin.
all_nodes() {
	for i in $nodes; do
		"$demo/bin/shoal" status --addr $net.$i:7070 -o json | "$@" || return 1
	done
}

# sees_all_nodes: the status on stdin has every node alive.
sees_all_nodes() { [ "$(grep -c '"alive": true')" = "$(echo $nodes | wc -w)" ]; }

# converged_on COMMIT: the status on stdin has COMMIT applied.
converged_on() {
	local st
	st=$(cat)
	grep -q '"converged": true' <<<"$st" && grep -q "\"commit\": \"$1\"" <<<"$st"
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

start_node() {
	local i=$1
	running node$i && return
	# nsenter enters only the node's network namespace: `ip netns exec` would also give the
	# agent a mount namespace of its own, hiding its Secret tmpfs mounts from containerd.
	SHOAL_WEBHOOK_SECRET=demo SHOAL_GOSSIP_KEY=$key setsid nsenter --net=/var/run/netns/shoal-demo-node$i -- "$demo/bin/shoal" agent \
		--node node$i --repo "$demo/repo" --state-dir "$demo/state/node$i" \
		--containerd-socket "$sock" --containerd-namespace shoal-demo-node$i \
		--netns /var/run/netns/shoal-demo-node$i --listen $net.$i:7070 --api-token-file "$SHOAL_TOKEN_FILE" \
		--pod-network on --route-mode vxlan \
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
	wait_for 30 "the nodes to join" all_nodes sees_all_nodes
	deploy_examples
	local head
	head=$(git -C "$demo/repo" rev-parse HEAD)
	wait_for 90 "every node to converge on ${head:0:12} (rejected? see $demo/node*.log)" all_nodes converged_on "$head"
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
	make_network
	start_registry
	start_forwarders
	make_repo
	start_agents
	"$demo/bin/shoal" status --addr $net.1:7070
	cat <<EOF

A three-node Shoal cluster is running: hello (3 replicas), frontend (3) and backend (6), each
instance with its own address. Try:

  export SHOAL_TOKEN_FILE=$SHOAL_TOKEN_FILE           # the agents' API token
  $demo/bin/shoal status --addr $net.1:7070   # nodes and their pod subnets, workloads, instances and addresses
  curl -s $net.1:30081 ; curl -s $net.3:30081  # frontend's NodePort, on any node: it calls http://backend/
  curl -s $net.2:30080                         # hello's NodePort
  dig +short @$net.1 backend.default.svc.cluster.local   # the Service's virtual IP (port 80 -> 9090)
  nsenter --net=/var/run/netns/shoal-demo-node1 curl -s ADDRESS:9090/fail   # a backend leaves the rotation
  $demo/bin/shoal explain backend --addr $net.1:7070     # why each replica runs where it does
  $demo/bin/shoal logs hello --addr $net.2:7070

  cd $demo/repo
  sed -i 's/hello:v1/hello:v2/' hello.yaml && git commit -qam "hello v2"   # rolls within ~2s
  git revert --no-edit HEAD                                                 # and back
  echo 'kind: [broken' > bad.yaml && git add bad.yaml && git commit -qm bad # refused, file:line in status

  Your own images: push them to $registry, where the nodes pull them by that same name,
  then name them in a manifest and commit, as above (a tag that is not there: "not found").
  The registry keeps them in memory: demo-down forgets them (the nodes keep what they pulled).
  crane=$demo/bin/crane
  \$crane mutate $registry/hello:v2 --env VERSION=v3 -t $registry/hello:v3   # a new tag of hello
  tar cf app.tar app     # app: your static linux/amd64 program, as /app in the image
  \$crane append -f app.tar -t $registry/app:v1
  \$crane mutate $registry/app:v1 --entrypoint /app --set-platform linux/amd64 -t $registry/app:v1
  \$crane ls $registry/hello                                                 # the tags

  $0 kill 3      # SIGKILL node3 and its containers; its work moves within seconds
  $0 revive 3    # bring it back

Logs: $demo/node1.log … node3.log. Stop everything with: make demo-down
EOF
}

# stop_procs NAME...: SIGTERM the demo's processes NAME (by their pid files) and wait
# until every one has ended.
stop_procs() {
	local pids=()
	for p in "$@"; do
		running "$p" && pids+=("$(cat "$demo/$p.pid")")
	done
	[ ${#pids[@]} -gt 0 ] || return 0
	kill "${pids[@]}"
	wait_for 20 "$* to stop" sh -c "for p in ${pids[*]}; do kill -0 \$p 2>/dev/null && exit 1; done; exit 0"
}

down() {
	say "stopping the agents and the registry forwarders"
	stop_procs $(for i in $nodes; do echo node$i forward-node$i; done)
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
		stop_procs containerd
	fi
	if running registry; then
		say "stopping the registry"
		stop_procs registry
	fi
	if ip netns list | grep -q '^shoal-demo-hub'; then
		say "removing the demo network"
		ip link del shoal-demo 2>/dev/null || true
		for n in hub node1 node2 node3; do ip netns del shoal-demo-$n 2>/dev/null || true; done
	fi
	# The instances' network namespaces and Secret volumes are mounts under $demo.
	awk -v d="$demo" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
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
	echo "usage: $0 up|down|kill N|revive N" >&2
	exit 2
	;;
esac
