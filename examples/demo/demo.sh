#!/usr/bin/env bash
# Shoal's demo: a private containerd, a registry on 127.0.0.1:5000 with the example images,
# a local Git repository made from examples/manifests, and an agent following it.
#
#   examples/demo/demo.sh up     (make demo)
#   examples/demo/demo.sh down   (make demo-down)
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
api=127.0.0.1:7070
ns=shoal-demo

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
	for cmd in git:git containerd:containerd runc:runc ctr:containerd curl:curl; do
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

start_agent() {
	running agent && return
	say "starting shoal agent (API on $api)"
	(cd "$top" && make -s build)
	cp "$top/bin/shoal" "$demo/bin/shoal"
	SHOAL_WEBHOOK_SECRET=demo setsid "$demo/bin/shoal" agent \
		--node demo-1 --repo "$demo/repo" --state-dir "$demo/state" \
		--containerd-socket "$sock" --containerd-namespace "$ns" \
		--listen "$api" --poll-interval 2s --crash-backoff 2s \
		>"$demo/agent.log" 2>&1 </dev/null &
	echo $! >"$demo/agent.pid"
	wait_for 60 "the agent to converge" sh -c "'$demo/bin/shoal' status --addr $api -o json | grep -q '\"converged\": true'"
}

up() {
	[ "$(id -u)" = 0 ] || { echo "demo: run as root (containerd needs it)" >&2; exit 1; }
	mkdir -p "$demo/bin"
	install_packages
	start_containerd
	start_registry
	make_repo
	start_agent
	"$demo/bin/shoal" status --addr "$api"
	cat <<EOF

Shoal is running. Try:

  curl -s 127.0.0.1:8080                         # the hello app answers with its version
  $demo/bin/shoal status                         # revision, workloads, instances
  $demo/bin/shoal logs hello -f                  # its logs

  cd $demo/repo
  sed -i 's/hello:v1/hello:v2/' hello.yaml && git commit -qam "hello v2"
  # the agent polls every 2s; or trigger it at once with the webhook:
  body='{}'; sig=\$(printf %s "\$body" | openssl dgst -sha256 -hmac demo -r | cut -d' ' -f1)
  curl -s -XPOST -H "X-Shoal-Signature: sha256=\$sig" -d "\$body" $api/webhook
  curl -s 127.0.0.1:8080                         # now v2
  git revert --no-edit HEAD                      # and back to v1
  echo 'kind: [broken' > bad.yaml && git add bad.yaml && git commit -qm bad
  $demo/bin/shoal status                         # the error with file and line; v1 keeps serving

Logs: $demo/agent.log. Stop everything with: make demo-down
EOF
}

down() {
	if running agent; then
		say "stopping the agent"
		kill "$(cat "$demo/agent.pid")"
	fi
	if running containerd; then
		say "removing the demo's containers"
		for id in $(ctr -a "$sock" -n "$ns" containers ls -q 2>/dev/null); do
			ctr -a "$sock" -n "$ns" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
		done
		sleep 1
		for id in $(ctr -a "$sock" -n "$ns" containers ls -q 2>/dev/null); do
			ctr -a "$sock" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 || true
			ctr -a "$sock" -n "$ns" containers delete "$id" >/dev/null 2>&1 || true
		done
		say "stopping containerd"
		kill "$(cat "$demo/containerd.pid")"
		wait_for 15 "containerd to stop" sh -c "! kill -0 $(cat "$demo/containerd.pid")"
	fi
	if running registry; then
		say "stopping the registry"
		kill "$(cat "$demo/registry.pid")"
	fi
	grep -o " $demo[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -f "$demo"/*.pid
	say "stopped; $demo is left for inspection (rm -rf it to start afresh)"
}

case "${1:-up}" in
up) up ;;
down) down ;;
*)
	echo "usage: $0 up|down" >&2
	exit 2
	;;
esac
