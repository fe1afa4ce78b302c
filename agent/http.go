package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/source"
	"github.com/shoalhq/shoal/spec"
)

// Handler serves the agent's HTTP API:
//
//	GET  /healthz  200 while the daemon serves
//	GET  /readyz   200 once running instances were adopted and a revision is in force (and, for a node told to join a cluster, once it joined)
//	GET  /status   the Status snapshot as JSON
//	GET  /logs     ?namespace=&workload=&tail=N&follow=1: this node's instances' logs, each line prefixed "[instance/container] "
//	GET  /view     the cluster as the last plan saw it (planner.View), for `shoal plan --cluster-from`
//	GET  /explain  ?namespace=&workload=: where each replica goes and why (planner.Explanation)
//	GET  /rollouts ?commit=SHA (or a prefix of 7 or more digits; default the newest): the
//	               commit's fate (CommitStatus); 404 while this node has not fetched it
//	GET  /metrics  Prometheus metrics
//	POST /webhook  the Git webhook (when cfg.Webhook is not nil)
//
// /healthz and /readyz are open, for probes and load balancers; /webhook checks its own
// signature; every other path needs cfg.Token or a verified client certificate, since
// logs and status carry what workloads print, Secrets included.
func (a *Agent) Handler(cfg APIConfig) http.Handler {
	mux := http.NewServeMux()
	api := http.NewServeMux()
	mux.Handle("/", newAuthenticator(cfg.Token).wrap(api))
	follow := newStreamLimiter(cfg.MaxFollowStreams, cfg.MaxFollowStreamsPerClient)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch st := a.Status(); {
		case st.NotJoined != "":
			http.Error(w, "not joined to the cluster: "+st.NotJoined, http.StatusServiceUnavailable)
		case !st.Adopted:
			http.Error(w, "running instances not adopted yet: the first runtime listing has not completed", http.StatusServiceUnavailable)
		case st.Desired == nil:
			http.Error(w, "no revision in force yet", http.StatusServiceUnavailable)
		default:
			io.WriteString(w, "ok\n")
		}
	})
	api.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, a.Status()) })
	api.HandleFunc("GET /logs", func(w http.ResponseWriter, r *http.Request) { a.serveLogs(w, r, follow, cfg.StreamWriteTimeout) })
	api.HandleFunc("GET /view", func(w http.ResponseWriter, _ *http.Request) {
		in := a.planInputs.Load()
		if in == nil {
			http.Error(w, "nothing planned yet", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, in.View)
	})
	api.HandleFunc("GET /explain", func(w http.ResponseWriter, r *http.Request) {
		ns := r.URL.Query().Get("namespace")
		if ns == "" {
			ns = "default"
		}
		e, err := a.Explain(ns, r.URL.Query().Get("workload"))
		switch {
		case errors.Is(err, planner.ErrUnknownWorkload):
			http.Error(w, err.Error(), http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		default:
			writeJSON(w, e)
		}
	})
	api.HandleFunc("GET /rollouts", func(w http.ResponseWriter, r *http.Request) {
		cs, err := findCommit(a.Status().Commits, r.URL.Query().Get("commit"))
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, cs)
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(statusCollector{a}, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	if wh, ok := cfg.Webhook.(webhookStats); ok {
		reg.MustRegister(webhookCollector{wh})
	}
	api.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if cfg.Webhook != nil {
		mux.Handle("/webhook", cfg.Webhook)
	}
	return mux
}

// findCommit finds the commit that want names (a SHA or a prefix of at least 7 digits;
// "" for the newest) among those this node follows.
func findCommit(commits []CommitStatus, want string) (*CommitStatus, error) {
	switch {
	case want == "" && len(commits) > 0:
		return &commits[0], nil
	case want == "":
		return nil, errors.New("no commit fetched yet")
	case len(want) < 7 || len(want) > 40 || strings.Trim(strings.ToLower(want), "0123456789abcdef") != "":
		return nil, fmt.Errorf("%q is not a commit SHA (7 to 40 hex digits)", want)
	}
	want = strings.ToLower(want)
	for i := range commits {
		if strings.HasPrefix(commits[i].Commit, want) {
			return &commits[i], nil
		}
	}
	return nil, fmt.Errorf("commit %s not fetched by this node (it follows its last %d commits)", want, maxTrackedCommits)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// PlanInputs are what the agent's last plan was computed from. Both are immutable once
// published, so readers on other goroutines may use them freely.
type PlanInputs struct {
	Desired spec.Desired
	View    planner.View
	// PodNetwork says the plan was made for instances with networks of their own.
	PodNetwork bool
	// Hashes are the spec hashes the plan used for Desired's Deployments: a reverted one's
	// comes from the commit it went back to, whose ConfigMaps and Secrets Desired lacks.
	Hashes map[*spec.Deployment]string
}

// Explain says where each replica of a workload goes and why, on the inputs of the last
// plan. It is safe from any goroutine.
func (a *Agent) Explain(namespace, workload string) (planner.Explanation, error) {
	in := a.planInputs.Load()
	if in == nil {
		return planner.Explanation{}, errors.New("agent: nothing planned yet")
	}
	hash := func(set *spec.Set, d *spec.Deployment) string {
		if h, ok := in.Hashes[d]; ok {
			return h
		}
		return spec.InstanceHash(set, d)
	}
	return planner.New(hash).WithPodNetwork(in.PodNetwork).Explain(in.Desired, in.View, namespace, workload)
}

// serveLogs streams the logs of one workload's instances on this node. Follow streams
// take a slot from limit; every write may take writeTimeout.
func (a *Agent) serveLogs(w http.ResponseWriter, r *http.Request, limit *streamLimiter, writeTimeout time.Duration) {
	q := r.URL.Query()
	ns, name := q.Get("namespace"), q.Get("workload")
	if ns == "" {
		ns = "default"
	}
	opts := executor.LogOptions{Tail: -1, Follow: q.Get("follow") == "1"}
	if t := q.Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			http.Error(w, "tail: want a number", http.StatusBadRequest)
			return
		}
		opts.Tail = n
	}
	var targets [][2]string
	for _, wl := range a.Status().Workloads {
		if wl.Namespace != ns || wl.Name != name {
			continue
		}
		for _, in := range wl.Instances {
			for _, c := range in.Containers {
				targets = append(targets, [2]string{in.ID, c.Name})
			}
		}
	}
	if len(targets) == 0 {
		http.Error(w, fmt.Sprintf("no instances of %s/%s on this node", ns, name), http.StatusNotFound)
		return
	}
	if opts.Follow {
		release, err := limit.acquire(clientAddr(r))
		if err != nil {
			w.Header().Set("Retry-After", "10")
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		}
		defer release()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	out := &lockedWriter{w: w, rc: http.NewResponseController(w), timeout: writeTimeout}
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := &prefixWriter{prefix: "[" + t[0] + "/" + t[1] + "] ", out: out}
			if err := a.rt.Logs(r.Context(), t[0], t[1], opts, pw); err != nil && r.Context().Err() == nil {
				fmt.Fprintf(pw, "error: %v\n", err)
			}
			pw.Flush()
		}()
	}
	wg.Wait()
}

// lockedWriter serialises whole lines from several streams and flushes each to the
// client. Each line gets timeout from now to reach the client, in place of the server's
// write timeout for the whole response, which would end every long stream.
type lockedWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (l *lockedWriter) writeLine(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timeout > 0 {
		l.rc.SetWriteDeadline(time.Now().Add(l.timeout))
	}
	l.w.Write(b)
	l.rc.Flush()
}

// prefixWriter cuts a stream into lines and writes each with a prefix.
type prefixWriter struct {
	prefix string
	out    *lockedWriter
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.out.writeLine(append([]byte(p.prefix), p.buf[:i+1]...))
		p.buf = p.buf[i+1:]
	}
}

// Flush writes a last line that had no newline.
func (p *prefixWriter) Flush() {
	if len(p.buf) > 0 {
		p.out.writeLine(append(append([]byte(p.prefix), p.buf...), '\n'))
		p.buf = nil
	}
}

// statusCollector turns the latest Status snapshot into Prometheus metrics at scrape time,
// so metrics never disagree with /status and never touch the loop's state.
type statusCollector struct{ a *Agent }

var (
	descInstances = prometheus.NewDesc("shoal_instances", "Instances on this node by workload and phase.", []string{"namespace", "workload", "phase"}, nil)
	descReplicas  = prometheus.NewDesc("shoal_workload_replicas", "Desired replicas of a workload.", []string{"namespace", "workload"}, nil)
	descRestarts  = prometheus.NewDesc("shoal_container_restarts", "Container restarts of a workload's instances on this node.", []string{"namespace", "workload"}, nil)
	descRevision  = prometheus.NewDesc("shoal_revision_info", "The revision in force (desired) and the last one applied on this node.", []string{"kind", "commit"}, nil)
	descConverged = prometheus.NewDesc("shoal_converged", "1 when this node runs exactly its share of the desired revision, all ready.", nil, nil)
	descSyncError = prometheus.NewDesc("shoal_sync_error", "1 while the Git source fails or the newest revision is rejected.", nil, nil)
	descStage     = prometheus.NewDesc("shoal_revision_stage_seconds", "Seconds from fetching the desired revision to each stage on this node.", []string{"stage"}, nil)
	descUnplaced  = prometheus.NewDesc("shoal_unplaced_replicas", "Replicas that no node can take.", []string{"namespace", "workload"}, nil)
	descRollouts  = prometheus.NewDesc("shoal_rollouts_total", "Rollouts this node decided, by outcome (succeeded, failed); each rollout is decided by one node.", []string{"outcome"}, nil)
	descRolloutS  = prometheus.NewDesc("shoal_rollout_duration_seconds", "Seconds from a rollout's start to its verdict, for the rollouts this node decided.", nil, nil)
)

// Describe implements prometheus.Collector.
func (statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInstances, descReplicas, descRestarts, descRevision, descConverged, descSyncError, descStage, descUnplaced, descRollouts, descRolloutS} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ch <- prometheus.MustNewConstMetric(descRollouts, prometheus.CounterValue, float64(st.Rollouts.Succeeded), "succeeded")
	ch <- prometheus.MustNewConstMetric(descRollouts, prometheus.CounterValue, float64(st.Rollouts.Failed), "failed")
	buckets := make(map[float64]uint64, len(RolloutBuckets))
	for i, b := range RolloutBuckets {
		if i < len(st.Rollouts.Buckets) {
			buckets[b] = st.Rollouts.Buckets[i]
		} else {
			buckets[b] = 0
		}
	}
	ch <- prometheus.MustNewConstHistogram(descRolloutS, st.Rollouts.Succeeded+st.Rollouts.Failed, st.Rollouts.Sum, buckets)
	for _, w := range st.Workloads {
		// Status lists the other nodes' instances too (from gossip); these two count this
		// node's. Every phase is exported, so that a phase emptied shows 0 rather than vanishing.
		count := make(map[Phase]int, len(phases))
		for _, p := range phases {
			count[p] = 0
		}
		restarts := 0
		for _, in := range w.Instances {
			if in.Node != st.Node {
				continue
			}
			count[in.Phase.kind()]++ // "Init:1/2" counts as Init
			restarts += in.Restarts
		}
		for p, n := range count {
			gauge(descInstances, float64(n), w.Namespace, w.Name, string(p))
		}
		gauge(descReplicas, float64(w.Replicas), w.Namespace, w.Name)
		gauge(descRestarts, float64(restarts), w.Namespace, w.Name)
		unplaced := 0
		for _, u := range w.Unplaced {
			unplaced += u.Replicas()
		}
		gauge(descUnplaced, float64(unplaced), w.Namespace, w.Name)
	}
	if st.Desired != nil {
		gauge(descRevision, 1, "desired", st.Desired.Commit)
	}
	if st.Applied != nil {
		gauge(descRevision, 1, "applied", st.Applied.Commit)
	}
	gauge(descConverged, boolFloat(st.Converged))
	gauge(descSyncError, boolFloat(st.Sync.Error != ""))
	if len(st.Timeline) > 0 {
		start := st.Timeline[0].Time
		for _, s := range st.Timeline {
			gauge(descStage, s.Time.Sub(start).Seconds(), s.Name)
		}
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// webhookStats is what *source.Webhook tells about its requests.
type webhookStats interface{ Stats() source.WebhookStats }

// webhookCollector exports the webhook's counts at scrape time.
type webhookCollector struct{ w webhookStats }

var descWebhook = prometheus.NewDesc("shoal_webhook_requests_total",
	"Webhook requests by result: accepted (a check was asked for), repeated (a delivery ID seen before, ignored), refused.", []string{"result"}, nil)

// Describe implements prometheus.Collector.
func (webhookCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descWebhook }

// Collect implements prometheus.Collector.
func (c webhookCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.w.Stats()
	for result, n := range map[string]uint64{"accepted": st.Accepted, "repeated": st.Repeated, "refused": st.Refused} {
		ch <- prometheus.MustNewConstMetric(descWebhook, prometheus.CounterValue, float64(n), result)
	}
}
