package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/dns"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/gossip"
	"github.com/shoalhq/shoal/identity"
	"github.com/shoalhq/shoal/notify"
	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/source"
	"github.com/shoalhq/shoal/spec"
)

// agentFlags are the flags of `shoal agent`; each may also be set in the --config file.
type agentFlags struct {
	src              repoFlags
	configFile       string
	node             string
	listen           string
	api              apiServerFlags // how the API on listen is secured
	socket           string
	namespace        string
	netns            string
	labels           []string
	cpu, memory      string
	pollInterval     time.Duration
	resync           time.Duration
	plainRegistries  []string
	registryConfig   string
	logMaxBytes      int64
	crashBackoffBase time.Duration
	logLevel         string
	gossipBind       string
	advertise        string
	join             []string
	gossipKeyFile    string
	caCert           string
	nodeCert         string
	nodeKey          string
	revoked          string
	gossipProfile    string
	dnsListen        string
	clusterDomain    string
	dnsTTL           time.Duration
	dnsUpstreams     []string
	maxInstances     int
	surviveAfter     time.Duration
	// permissions is what instances may ask for beyond the default sandbox.
	permissions executor.Permissions
	net         networkFlags
	report      reportFlags
}

// reportFlags say where each commit's fate is reported (package notify). Tokens and the
// webhook's secret come from the environment only, never a flag, so no process listing
// shows them.
type reportFlags struct {
	githubRepo, githubAPI     string
	gitlabProject, gitlabAPI  string
	webhook, context, linkURL string
}

func (r *reportFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&r.githubRepo, "report-github", "", "report commit statuses to this GitHub repository, owner/name (token from $SHOAL_GITHUB_TOKEN or $GITHUB_TOKEN)")
	fl.StringVar(&r.githubAPI, "report-github-api", notify.DefaultGitHubAPI, "GitHub API URL (GitHub Enterprise Server: https://HOST/api/v3)")
	fl.StringVar(&r.gitlabProject, "report-gitlab", "", "report commit statuses to this GitLab project, group/name or numeric ID (token from $SHOAL_GITLAB_TOKEN)")
	fl.StringVar(&r.gitlabAPI, "report-gitlab-api", notify.DefaultGitLabAPI, "GitLab instance URL")
	fl.StringVar(&r.webhook, "report-webhook", "", "POST each commit's status as signed JSON to this URL (secret from $SHOAL_REPORT_WEBHOOK_SECRET)")
	fl.StringVar(&r.context, "report-context", notify.DefaultContext, "the status's context (GitHub) or name (GitLab)")
	fl.StringVar(&r.linkURL, "report-link", "", `URL a status links to, "{commit}" standing for the SHA`)
}

// reportSettings names the flag or environment variable behind each notify.Config field,
// for error messages.
var reportSettings = map[string]string{
	"GitHubRepo": "--report-github", "GitHubAPI": "--report-github-api", "GitHubToken": "$SHOAL_GITHUB_TOKEN (or $GITHUB_TOKEN)",
	"GitLabProject": "--report-gitlab", "GitLabAPI": "--report-gitlab-api", "GitLabToken": "$SHOAL_GITLAB_TOKEN",
	"WebhookURL": "--report-webhook", "WebhookSecret": "$SHOAL_REPORT_WEBHOOK_SECRET",
	"Context": "--report-context", "LinkURL": "--report-link",
}

// notifier builds the Notifier the flags and environment describe; it is disabled when no
// --report-* destination is set.
func (r *reportFlags) notifier() (*notify.Notifier, error) {
	githubToken := os.Getenv("SHOAL_GITHUB_TOKEN")
	if githubToken == "" {
		githubToken = os.Getenv("GITHUB_TOKEN")
	}
	n, err := notify.New(notify.Config{
		GitHubRepo: r.githubRepo, GitHubAPI: r.githubAPI, GitHubToken: strings.TrimSpace(githubToken),
		GitLabProject: r.gitlabProject, GitLabAPI: r.gitlabAPI, GitLabToken: strings.TrimSpace(os.Getenv("SHOAL_GITLAB_TOKEN")),
		WebhookURL: r.webhook, WebhookSecret: strings.TrimSpace(os.Getenv("SHOAL_REPORT_WEBHOOK_SECRET")),
		Context: r.context, LinkURL: r.linkURL,
	})
	if ce, ok := errors.AsType[*notify.ConfigError](err); ok {
		return nil, fmt.Errorf("%s: %s", reportSettings[ce.Field], ce.Problem)
	}
	return n, err
}

func newAgentCommand() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the Shoal daemon on this node",
		Long: `Agent runs the daemon: it follows the Git source, plans, and runs this node's share of
the workloads on containerd. Containers keep running when the agent stops; a restarted
agent adopts them. Every flag may also be set in a YAML --config file whose keys are the
flag names (flags on the command line win). Secrets come from the environment:
SHOAL_WEBHOOK_SECRET, SHOAL_GIT_PASSWORD, SHOAL_GIT_TOKEN, and for --report-*
SHOAL_GITHUB_TOKEN (or GITHUB_TOKEN), SHOAL_GITLAB_TOKEN, SHOAL_REPORT_WEBHOOK_SECRET.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.configFile != "" {
				if err := applyConfigFile(cmd.Flags(), f.configFile); err != nil {
					return &exitError{code: exitTrouble, err: err}
				}
			}
			return runAgent(cmd.Context(), f)
		},
	}
	host, _ := os.Hostname()
	fl := cmd.Flags()
	f.src.register(cmd, true)
	fl.StringVar(&f.configFile, "config", "", "YAML file of flag values")
	fl.StringVar(&f.node, "node", host, "this node's name")
	stateDir := fl.Lookup("state-dir") // the agent keeps its clone, logs and volumes there
	stateDir.DefValue, stateDir.Usage, f.src.stateDir = "/var/lib/shoal", "where the Git clone, logs and volumes are kept", "/var/lib/shoal"
	fl.StringVar(&f.listen, "listen", "127.0.0.1:7070", "HTTP address of the API, webhook and metrics")
	f.api.register(fl)
	fl.StringVar(&f.socket, "containerd-socket", "/run/containerd/containerd.sock", "containerd's socket")
	fl.StringVar(&f.namespace, "containerd-namespace", "shoal", "containerd namespace of Shoal's containers")
	fl.StringVar(&f.netns, "netns", "", "network namespace path the containers join (default: the host's)")
	fl.StringSliceVar(&f.labels, "label", nil, "node label key=value (repeatable)")
	fl.StringVar(&f.cpu, "cpu", "", "allocatable CPU as a quantity, e.g. 2 or 1500m (default: the machine's cores)")
	fl.StringVar(&f.memory, "memory", "", "allocatable memory as a quantity, e.g. 8Gi (default: the machine's memory)")
	fl.DurationVar(&f.pollInterval, "poll-interval", time.Minute, "how often the remote head is checked")
	fl.DurationVar(&f.resync, "resync-interval", 30*time.Second, "how often the runtime is re-read though nothing happened")
	fl.StringSliceVar(&f.plainRegistries, "insecure-registry", nil, "registry host[:port] reached over plain HTTP (loopback ones always are)")
	fl.StringVar(&f.registryConfig, "registry-config", "", "Docker-style config.json with registry credentials")
	fl.Int64Var(&f.logMaxBytes, "log-max-bytes", 10<<20, "size over which a container log is rotated")
	fl.DurationVar(&f.crashBackoffBase, "crash-backoff", 10*time.Second, "delay after the second crash in a row; doubles up to 5m")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.gossipBind, "gossip-bind", "0.0.0.0:7946", "address:port for gossip (UDP and TCP)")
	fl.StringVar(&f.advertise, "advertise", "", "this node's address as others reach it (gossip, and instances under host networking); default: the gossip bind address, or the first private address")
	fl.StringSliceVar(&f.join, "join", nil, "address:port of a node to join (repeatable); nodes may start in any order")
	fl.StringVar(&f.gossipKeyFile, "gossip-key-file", "", "file of base64 gossip keys, one a line, the first encrypts (or $SHOAL_GOSSIP_KEY, comma-separated); without keys the agent runs alone")
	fl.StringVar(&f.caCert, "ca-cert", "", "the cluster CA certificate(s), PEM (shoal ca init); two during a CA rotation")
	fl.StringVar(&f.nodeCert, "node-cert", "", "this node's certificate, PEM (shoal ca issue); it must name --node")
	fl.StringVar(&f.nodeKey, "node-key", "", "this node's private key, PEM (shoal ca issue)")
	fl.StringVar(&f.revoked, "revoked", "", `file of revoked certificates, one "serial HEX" or "node NAME" a line`)
	fl.StringVar(&f.gossipProfile, "gossip-profile", "default", "failure detection timings: fast, default (LAN) or safe")
	fl.StringVar(&f.dnsListen, "dns-listen", "127.0.0.1:53", `address:port of the node's DNS server (UDP and TCP); containers' resolv.conf names its address, so keep port 53; "off" disables DNS`)
	fl.StringVar(&f.clusterDomain, "cluster-domain", "cluster.local", "DNS domain of Services: SERVICE.NAMESPACE.svc.DOMAIN")
	fl.DurationVar(&f.dnsTTL, "dns-ttl", 5*time.Second, "TTL of DNS answers")
	fl.StringSliceVar(&f.dnsUpstreams, "dns-upstream", nil, "resolvers for names outside the cluster domain (default: the nameservers of /etc/resolv.conf)")
	fl.IntVar(&f.maxInstances, "max-instances-per-node", planner.DefaultMaxInstances, "most instances this node runs, as the kubelet's --max-pods; each node may have its own (it travels in gossip)")
	fl.DurationVar(&f.surviveAfter, "survive-after", time.Minute, "how long the agent runs with a revision before trusting it, unless it converges on it sooner; one that takes the agent down before then is not applied again at start-up")
	fl.BoolVar(&f.permissions.Privileged, "allow-privileged", false, "run containers that ask for securityContext.privileged (otherwise refused)")
	fl.BoolVar(&f.permissions.HostNetwork, "allow-host-network", false, "run instances that ask for hostNetwork: true (otherwise refused)")
	fl.BoolVar(&f.permissions.HostPID, "allow-host-pid", false, "run instances that ask for hostPID: true (otherwise refused)")
	fl.BoolVar(&f.permissions.HostIPC, "allow-host-ipc", false, "run instances that ask for hostIPC: true (otherwise refused)")
	fl.BoolVar(&f.permissions.HostPort, "allow-host-port", false, "run instances whose container ports ask for a hostPort, a port of the node forwarded to them (otherwise refused)")
	fl.StringSliceVar(&f.permissions.HostPaths, "allow-host-path", nil, "directory whose contents hostPath volumes may mount (repeatable; otherwise refused)")
	fl.StringVar(&f.permissions.SeccompProfileRoot, "seccomp-profile-root", "", "directory of the seccomp profiles that Localhost profiles name (otherwise refused)")
	fl.BoolVar(&f.permissions.SeccompUnconfined, "allow-unconfined-seccomp", false, "run containers that ask for seccompProfile type Unconfined (otherwise refused)")
	f.net.register(fl)
	f.report.register(fl)
	fl.StringSliceVar(&f.permissions.Capabilities, "allow-capability", nil, "capability (e.g. NET_RAW, or ALL) that capabilities.add may name beyond the default set (repeatable; otherwise refused)")
	return cmd
}

// applyConfigFile sets every flag named in a YAML file that the command line left unset.
func applyConfigFile(fl *pflag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var values map[string]any
	if err := yaml.UnmarshalStrict(data, &values); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for name, v := range values {
		flag := fl.Lookup(name)
		if flag == nil || name == "config" {
			return fmt.Errorf("config %s: unknown setting %q", path, name)
		}
		if flag.Changed {
			continue
		}
		items := []any{v}
		if list, ok := v.([]any); ok {
			items = list
		}
		for _, item := range items {
			if err := fl.Set(name, fmt.Sprint(item)); err != nil {
				return fmt.Errorf("config %s: %s: %w", path, name, err)
			}
		}
	}
	return nil
}

func runAgent(parent context.Context, f agentFlags) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: parseLevel(f.logLevel)}))
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := agent.DefaultConfig(f.node)
	cfg.Logger = log
	cfg.ResyncInterval = f.resync
	cfg.CrashBackoff.Base = f.crashBackoffBase
	cfg.CrashBackoff.Cap = max(cfg.CrashBackoff.Cap, f.crashBackoffBase)
	cfg.MaxInstances, cfg.SurviveAfter, cfg.Permissions = f.maxInstances, f.surviveAfter, f.permissions
	labels, err := parseLabels(f.labels)
	if err != nil {
		return &exitError{code: exitTrouble, err: err}
	}
	for k, v := range labels {
		cfg.Labels[k] = v
	}
	cfg.APIAddr = f.listen
	if cfg.Allocatable, err = allocatable(f.cpu, f.memory); err != nil {
		return &exitError{code: exitTrouble, err: err}
	}
	cfg.EphemeralStorageBytes = diskSize(f.src.stateDir)
	notifier, err := f.report.notifier()
	if err != nil {
		return &exitError{code: exitTrouble, err: err}
	}
	if f.src.url == "" {
		return &exitError{code: exitTrouble, err: errors.New("--repo is required")}
	}

	repo, err := source.Open(ctx, f.src.source(), filepath.Join(f.src.stateDir, "git"),
		append(f.src.limits.repoOptions(), source.WithLogger(log))...)
	if err != nil {
		return err
	}
	defer repo.Close()
	marker, err := source.OpenMarker(f.src.stateDir)
	if err != nil {
		return err
	}
	if s := marker.Suspect(); s != "" {
		log.Error("the agent went down applying a revision: it is skipped until a newer commit", "commit", s, "trusted", marker.Trusted())
	}
	pcfg := source.DefaultPollerConfig()
	pcfg.Interval, pcfg.Logger = f.pollInterval, log
	pcfg.Marker = marker
	poller, err := source.NewPoller(repo, pcfg)
	if err != nil {
		return err
	}
	var webhook http.Handler
	if secret := os.Getenv("SHOAL_WEBHOOK_SECRET"); secret != "" {
		if webhook, err = source.NewWebhook([]byte(secret), poller, log); err != nil {
			return err
		}
	} else {
		log.Warn("SHOAL_WEBHOOK_SECRET is not set: the webhook is off, changes arrive by polling")
	}

	if cfg.Network, err = f.net.config(); err != nil {
		return &exitError{code: exitTrouble, err: err}
	}
	var pods *podNetwork
	execOpts := []executor.Option{}
	if cfg.Network.On() {
		if pods, err = openPodNetwork(&f.net, &cfg.Network, f.src.stateDir, log); err != nil {
			return &exitError{code: exitTrouble, err: fmt.Errorf("pod network (--pod-network=off runs instances on the node's network): %w", err)}
		}
		execOpts = append(execOpts, executor.WithPodNetwork(pods.Pods.ForExecutor()))
	}
	rt, err := executor.NewContainerd(ctx, append(execOpts,
		executor.WithSocket(f.socket),
		executor.WithNamespace(f.namespace),
		executor.WithStateDir(filepath.Join(f.src.stateDir, "executor")),
		executor.WithRuncRoot(filepath.Join("/run/shoal", f.namespace, "runc")),
		executor.WithNetNS(f.netns),
		executor.WithPlainHTTPRegistries(f.plainRegistries...),
		executor.WithDockerConfig(f.registryConfig),
		executor.WithLogMaxBytes(f.logMaxBytes),
		executor.WithPermissions(f.permissions),
		executor.WithLogger(log),
	)...)
	if err != nil {
		return err
	}
	defer rt.Close()
	// Before anything starts: files of instances an earlier agent's crash left behind.
	if err := rt.CollectInstanceFiles(ctx); err != nil {
		log.Warn("removing the files of instances that no longer exist", "err", err)
	}

	// The configuration is completed in one order, each field set before anything reads
	// it: the DNS server's address goes into the gossip metadata, and the address gossip
	// advertises is the node's address that DNS answers and resolv.conf name.
	opts := []agent.Option{agent.WithRevisionMarker(marker), agent.WithCommitLoader(poller),
		agent.WithDecisionsFile(filepath.Join(f.src.stateDir, "decisions.json"))}
	if notifier.Enabled() {
		opts = append(opts, agent.WithReporter(reporter{n: notifier, node: cfg.NodeName}))
	}
	keys, err := gossipKeys(f.gossipKeyFile)
	if err != nil {
		return &exitError{code: exitTrouble, err: err}
	}
	if len(keys) == 0 && len(f.join) > 0 {
		return &exitError{code: exitTrouble, err: errors.New("--join needs a gossip key (SHOAL_GOSSIP_KEY or --gossip-key-file); without --join the agent runs as a cluster of one")}
	}
	var dnsServer *dns.Server
	if f.dnsListen != "off" {
		if dnsServer, err = openDNS(f, log); err != nil {
			return err
		}
		defer dnsServer.Close()
		cfg.DNSAddr = dnsServer.Addr()
	}
	if len(keys) > 0 {
		cluster, err := startCluster(ctx, f, cfg.Meta(), keys, log)
		if err != nil {
			return err
		}
		defer func() {
			if err := cluster.Leave(5 * time.Second); err != nil {
				log.Warn("leaving the cluster", "err", err)
			}
			cluster.Shutdown()
		}()
		if addr, _, err := net.SplitHostPort(cluster.Addr()); err == nil {
			cfg.NodeAddr = addr
		}
		opts = append(opts, agent.WithCluster(cluster))
	} else {
		log.Warn("no gossip key (SHOAL_GOSSIP_KEY or --gossip-key-file): running as a cluster of one")
	}
	if pods != nil {
		// Without a cluster there are no other nodes to route to: no routes.
		var nodeAddr netip.Addr
		if len(keys) > 0 {
			if nodeAddr, err = netip.ParseAddr(cfg.NodeAddr); err != nil {
				return &exitError{code: exitTrouble, err: fmt.Errorf("pod network: the node's address %q: %w", cfg.NodeAddr, err)}
			}
		}
		if err := pods.open(cfg.Network, nodeAddr); err != nil {
			return err
		}
		defer pods.Node.Detach() // the kernel state stays for the instances, and the next agent
		if err := rt.CollectNetworks(ctx); err != nil {
			log.Warn("removing the networks of instances that no longer exist", "err", err)
		}
		opts = append(opts, agent.WithNetwork(pods.Node))
	}
	if dnsServer != nil {
		go dnsServer.Serve(ctx)
		opts = append(opts, agent.WithDNS(dnsConfig(f, dnsServer, cfg.NodeAddr, log)))
	}
	a, err := agent.New(cfg, rt, poller.Events(), opts...)
	if err != nil {
		return err
	}
	apiCfg, tlsCfg, err := f.api.config(filepath.Join(f.src.stateDir, "api-token"), f.listen, log)
	if err != nil {
		return &exitError{code: exitTrouble, err: err}
	}
	apiCfg.Webhook = webhook
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	srv := agent.NewAPIServer(a.Handler(apiCfg), tlsCfg)
	go serveAPI(srv, ln, log)
	log.Info("shoal agent started", "node", f.node, "repo", f.src.url, "listen", ln.Addr().String(),
		"cpu_milli", cfg.Allocatable.MilliCPU, "memory_bytes", cfg.Allocatable.MemoryBytes)

	pollerDone := make(chan error, 1)
	go func() { pollerDone <- poller.Run(ctx) }()
	runErr := a.Run(ctx)
	stop()
	<-pollerDone
	if runErr == nil {
		// A clean stop: no revision took the daemon down, even one that had not reached
		// the agent yet.
		if err := marker.ReleaseApplying(); err != nil {
			log.Error("recording a clean stop failed", "err", err)
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	log.Info("shoal agent stopped; containers keep running")
	return runErr
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

func parseLabels(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// allocatable resolves the --cpu and --memory flags, defaulting to the machine's size.
func allocatable(cpu, memory string) (planner.Resources, error) {
	r := planner.Resources{MilliCPU: int64(runtime.NumCPU()) * 1000, MemoryBytes: machineMemory()}
	if cpu != "" {
		q, err := spec.ParseQuantity(cpu)
		if err != nil {
			return r, fmt.Errorf("--cpu: %w", err)
		}
		r.MilliCPU = q.MilliValue()
	}
	if memory != "" {
		q, err := spec.ParseQuantity(memory)
		if err != nil {
			return r, fmt.Errorf("--memory: %w", err)
		}
		r.MemoryBytes = q.Value()
	}
	return r, nil
}

// diskSize is the size of the filesystem that holds dir, or will once dir is made (the
// kubelet's nodefs); 0 when it cannot tell.
func diskSize(dir string) int64 {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		var st syscall.Statfs_t
		if syscall.Statfs(d, &st) == nil {
			return int64(st.Blocks) * st.Bsize
		}
		if d == filepath.Dir(d) {
			return 0
		}
	}
}

// machineMemory reads MemTotal from /proc/meminfo; 0 when it cannot.
func machineMemory() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb)
			return kb * 1024
		}
	}
	return 0
}

// gossipKeys reads the gossip keyring from a file (one base64 key a line) or from
// $SHOAL_GOSSIP_KEY (comma-separated). The first key encrypts; all decrypt.
func gossipKeys(file string) ([][]byte, error) {
	text := os.Getenv("SHOAL_GOSSIP_KEY")
	sep := ","
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--gossip-key-file: %w", err)
		}
		text, sep = string(data), "\n"
	}
	var keys [][]byte
	for _, field := range strings.Split(text, sep) {
		if field = strings.TrimSpace(field); field == "" {
			continue
		}
		key, err := gossip.ParseKey(field)
		if err != nil {
			return nil, fmt.Errorf("gossip key %d: %w", len(keys)+1, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// startCluster joins the gossip cluster, telling it meta about this node.
func startCluster(ctx context.Context, f agentFlags, meta gossip.Meta, keys [][]byte, log *slog.Logger) (*gossip.Cluster, error) {
	var gcfg gossip.Config
	switch f.gossipProfile {
	case "fast":
		gcfg = gossip.FastConfig()
	case "default":
		gcfg = gossip.DefaultConfig()
	case "safe":
		gcfg = gossip.SafeConfig()
	default:
		return nil, &exitError{code: exitTrouble, err: fmt.Errorf("--gossip-profile %q: want fast, default or safe", f.gossipProfile)}
	}
	host, port, err := net.SplitHostPort(f.gossipBind)
	if err != nil {
		return nil, &exitError{code: exitTrouble, err: fmt.Errorf("--gossip-bind: %w", err)}
	}
	gcfg.NodeName, gcfg.BindAddr, gcfg.AdvertiseAddr = f.node, host, f.advertise
	if gcfg.BindPort, err = strconv.Atoi(port); err != nil {
		return nil, &exitError{code: exitTrouble, err: fmt.Errorf("--gossip-bind port: %w", err)}
	}
	gcfg.Seeds, gcfg.SecretKeys, gcfg.Logger = f.join, keys, log
	if gcfg.Identity, gcfg.Verifier, err = loadIdentity(f); err != nil {
		return nil, &exitError{code: exitTrouble, err: err}
	}
	gcfg.Meta = meta
	// Rollout verdicts and the commit statuses sent outlive a restart of the whole cluster.
	gcfg.DecisionsFile = filepath.Join(f.src.stateDir, "gossip-decisions")
	cluster, err := gossip.Start(ctx, gcfg)
	if err != nil {
		return nil, err
	}
	log.Info("gossip started", "addr", cluster.Addr(), "join", f.join)
	return cluster, nil
}

// loadIdentity reads the node's certificate and key and the cluster CA, which
// gossip needs to sign this node's records and verify the others'.
func loadIdentity(f agentFlags) (*identity.Identity, *identity.Verifier, error) {
	if f.caCert == "" || f.nodeCert == "" || f.nodeKey == "" {
		return nil, nil, errors.New("a cluster needs --ca-cert, --node-cert and --node-key (create them with shoal ca init and shoal ca issue)")
	}
	id, err := identity.Load(f.nodeCert, f.nodeKey)
	if err != nil {
		return nil, nil, err
	}
	if id.Name != f.node {
		return nil, nil, fmt.Errorf("--node-cert %s names node %q, but this node is --node %q", f.nodeCert, id.Name, f.node)
	}
	v, err := identity.NewVerifier(f.caCert, f.revoked)
	if err != nil {
		return nil, nil, err
	}
	if _, err := v.Verify(id.DER, id.Name, time.Now()); err != nil {
		return nil, nil, fmt.Errorf("--node-cert %s: %w (is it issued by the CA in --ca-cert %s?)", f.nodeCert, err, f.caCert)
	}
	return id, v, nil
}

// openDNS opens the node's DNS server.
func openDNS(f agentFlags, log *slog.Logger) (*dns.Server, error) {
	dcfg := dns.DefaultConfig()
	dcfg.Addr, dcfg.Domain, dcfg.TTL, dcfg.Logger = f.dnsListen, f.clusterDomain, f.dnsTTL, log
	dcfg.Upstreams = f.dnsUpstreams
	if len(dcfg.Upstreams) == 0 {
		upstreams, err := dns.ParseResolvConf("/etc/resolv.conf")
		if err != nil {
			log.Warn("no upstream resolvers: names outside the cluster domain will be refused", "err", err)
		}
		dcfg.Upstreams = upstreams
	}
	server, err := dns.New(dcfg)
	if err != nil {
		return nil, fmt.Errorf("DNS server on %s (--dns-listen, or off): %w", f.dnsListen, err)
	}
	log.Info("DNS server started", "addr", server.Addr(), "domain", f.clusterDomain)
	return server, nil
}

// dnsConfig is how the agent feeds server and how its containers reach it: their
// resolv.conf names the server's address (or the node's address when it listens on every
// address), and only on port 53, the one resolv.conf can name.
func dnsConfig(f agentFlags, server *dns.Server, nodeAddr string, log *slog.Logger) agent.DNSConfig {
	var ns netip.Addr
	if ap, err := netip.ParseAddrPort(server.Addr()); err == nil {
		ns = ap.Addr()
		if ns.IsUnspecified() {
			ns, _ = netip.ParseAddr(nodeAddr)
		}
		if ap.Port() != 53 {
			log.Warn("the DNS server is not on port 53: containers keep the host's resolv.conf", "addr", server.Addr())
			ns = netip.Addr{}
		}
	}
	return agent.DNSConfig{Server: server, Domain: f.clusterDomain, Nameserver: ns}
}
