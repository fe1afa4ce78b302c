// Package executor owns what runs on this node: it makes containerd match the share of the
// placement the agent hands it. It resolves a Deployment's pod template into a fully
// specified InstanceSpec (Resolve), pulls images, creates, starts, stops, restarts and
// deletes the containers of an instance, adopts the ones a previous agent left running,
// runs commands in containers (Exec), reports task exits and OOM kills as Events, keeps
// per-instance log files with a size cap, and computes the CrashLoopBackOff schedule
// (Backoff). It runs health probes: ProbeTracker is Kubernetes' probe state machine
// (pure, time is an input), Check runs one httpGet, tcpSocket, exec or gRPC health check
// (grpcprobe.go), and a Prober runs an instance's probes and reports the changes of their
// verdicts to the agent. Containerd runs containers' postStart and preStop hooks around
// their starts and stops (hooks.go); the in-memory fake does not run hooks.
//
// The executor never decides placement, never decides when to restart or what "ready"
// does (the agent does, using Backoff and the Prober's reports), and never touches a
// container that does not carry Shoal's labels. It keeps no state of its own that
// containerd's labels, the state directory and the manifests cannot rebuild: a new Runtime
// on the same containerd sees what the old one started, and a new Prober starts the
// probes of an adopted instance over.
//
// Runtime is the interface the agent uses. Containerd implements it on a real containerd;
// executortest.Fake implements it in memory, and executortest.RunConformance holds both to
// the same contract. containerdtest starts a private containerd for tests.
//
// Every container runs in a sandbox (security.go): DefaultCapabilities (no NET_RAW), the
// runtime's default seccomp profile and no_new_privs, narrowed or widened by the
// container's Security. What reaches into the node (privileged, host namespaces, host
// paths, Localhost seccomp profiles) needs the node's Permissions, or Start fails with
// ErrForbidden. hostPath volumes are bound from descriptors opened inside the allowed
// directory (hostpath.go).
//
// Without a pod network, containers use the node's network (or the network namespace
// given by WithNetNS), so container ports are node resources. With one (WithPodNetwork),
// each instance that does not ask for hostNetwork gets a network namespace of its own,
// with the address InstanceSpec.Addr asks for, before its containers are created: they
// all join it, so they share its address and reach each other on localhost; each
// container has its own UTS namespace whose hostname is the instance ID, and an
// /etc/hosts naming the instance's address; hostPorts are forwarded to it. The address
// is a container label (LabelAddr), so List gives it after an agent restart; Stop
// detaches the namespace after the containers are gone, and CollectNetworks detaches
// those of instances that no longer exist. Containers' /etc/resolv.conf is the host's,
// or the one given by WithResolvConf. Under the state directory the executor keeps
// instances/<id>/volumes/<name> (ConfigMap files, emptyDirs, tmpfs mounts for Secrets
// so that their content never reaches a disk, and the binds of hostPath volumes), instances/<id>/volume-subpaths/<container>/<n>
// (the bind a subPath mount comes from, made again before every start without following
// symlinks; see subpath.go), instances/<id>/resolv.conf, instances/<id>/hosts and
// instances/<id>/hostname, and logs/<id>/<container>.log.
package executor
