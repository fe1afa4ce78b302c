package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shoalhq/shoal/dns"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/gossip"
	"github.com/shoalhq/shoal/network"
	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/source"
	"github.com/shoalhq/shoal/spec"
)

// update rewrites the expected outputs of testdata/*.txt with what the core does now.
var update = flag.Bool("update", false, "rewrite testdata/*.txt with the actual outputs")

// TestScenarios drives the core, with a fake clock and a fake runtime, through the
// scenarios in testdata/*.txt, in the style of etcd-io/raft's datadriven tests. Each
// directive is a command line, optional input lines, "----", and the expected output up
// to a blank line. The commands are listed in (*scenario).do.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ds := parseDirectives(string(data))
			s := &scenario{t: t}
			var out strings.Builder
			for _, d := range ds {
				got, err := s.do(d)
				if err != nil {
					t.Fatalf("%s:%d: %s: %v", file, d.line, d.cmd, err)
				}
				if !*update && got != d.expected {
					t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, d.line, d.cmd, got, d.expected)
				}
				d.expected = got
				out.WriteString(d.String())
			}
			if *update {
				if err := os.WriteFile(file, []byte(strings.TrimSuffix(out.String(), "\n")), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// directive is one step of a scenario.
type directive struct {
	line     int
	pre      string // comments and blank lines before it
	cmd      string
	input    string
	expected string
}

func (d *directive) String() string {
	var b strings.Builder
	b.WriteString(d.pre)
	b.WriteString(d.cmd + "\n")
	if d.input != "" {
		b.WriteString(d.input + "\n")
	}
	b.WriteString("----\n")
	if d.expected != "" {
		b.WriteString(d.expected + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

func parseDirectives(text string) []*directive {
	var out []*directive
	var d *directive
	var pre strings.Builder
	inOutput := false
	var body []string
	for i, line := range strings.Split(text, "\n") {
		switch {
		case d == nil && (line == "" || strings.HasPrefix(line, "#")):
			pre.WriteString(line + "\n")
		case d == nil:
			d = &directive{line: i + 1, pre: pre.String(), cmd: line}
			pre.Reset()
		case !inOutput && line == "----":
			d.input, body, inOutput = strings.Join(body, "\n"), nil, true
		case !inOutput:
			body = append(body, line)
		case line == "":
			d.expected = strings.Join(body, "\n")
			out = append(out, d)
			d, body, inOutput = nil, nil, false
		default:
			body = append(body, line)
		}
	}
	if d != nil {
		d.expected = strings.Join(body, "\n")
		out = append(out, d)
	}
	return out
}

// scenario is the core under test, its fake clock and a fake runtime that does what the
// core asked once the scenario says the action is done.
type scenario struct {
	t    *testing.T
	c    *core
	now  time.Time
	revs []*spec.Desired // by revision number - 1
	// runtime is what the fake runtime holds, by instance ID.
	runtime map[string]executor.InstanceState
	// pending are the actions handed out and not done yet, by instance ID; listing one is
	// the listing in flight.
	pending map[string][]string
	listing bool
	specs   map[string]executor.InstanceSpec
	// alias names instance IDs in outputs as workload@revision/slot, by the first revision
	// with that spec.
	alias map[string]string
	// lastView is the last gossip view.
	lastView gossip.View
}

// do runs one command. The commands:
//
//	new [node=N] [cluster] [dns] [crash=D]  a core for node N (node-a, address 127.0.0.1) at 2026-01-01 00:00
//	revision [bad]                          the input is a revision's manifests (bad: fails to load)
//	runtime                                 what the fake runtime holds, a line per instance:
//	                                        "web@1/0 [exited=CODE] [exited:C=CODE] [notask:C] [only=C1,C2]"
//	done [ID...]                            the actions in flight (on ID) succeed; a listing lists the runtime
//	fail ID err=pull|config|forbidden|other the start in flight of ID fails
//	exit ID [code=N] [oom] [container=C]    the runtime reports the container main (or C) of ID exited
//	probe ID kind=healthy [container=C]     a verdict, e.g. readiness=false, of main (or C)
//	view                                    a gossip view: "node NAME [dead]" and "instance ID node=N [ready] [running]" lines;
//	                                        as gossip does, it shares each owner's list that did not change with the last view
//	join [why...]                           the node is part of its cluster, or not and why
//	tick D [resync]                         the clock moves on by D, then a tick (a resync)
//	ready                                   what the core decides: printed, carried out by the fake runtime, acknowledged
//	status                                  this node's instances and convergence
func (s *scenario) do(d *directive) (string, error) {
	fields := strings.Fields(d.cmd)
	cmd, args := fields[0], fields[1:]
	if cmd != "new" && s.c == nil {
		return "", errors.New("no core: start with new")
	}
	switch cmd {
	case "new":
		s.newCore(args)
	case "revision":
		return "", s.revision(d.input, slices.Contains(args, "bad"))
	case "runtime":
		s.runtime = map[string]executor.InstanceState{}
		for _, line := range lines(d.input) {
			f := strings.Fields(line)
			st, err := s.state(f[0])
			if err != nil {
				return "", err
			}
			for _, a := range f[1:] {
				if code, ok := strings.CutPrefix(a, "exited="); ok {
					a = "exited:" + st.Containers[0].Name + "=" + code
				}
				if nameCode, ok := strings.CutPrefix(a, "exited:"); ok {
					name, code, _ := strings.Cut(nameCode, "=")
					i := slices.IndexFunc(st.Containers, func(c executor.ContainerState) bool { return c.Name == name })
					if i < 0 {
						return "", fmt.Errorf("%s: no container %s", f[0], name)
					}
					st.Containers[i].Status = executor.StatusExited
					st.Containers[i].ExitCode, _ = strconv.Atoi(code)
					st.Containers[i].ExitedAt = s.now
				}
				if name, ok := strings.CutPrefix(a, "notask:"); ok {
					i := slices.IndexFunc(st.Containers, func(c executor.ContainerState) bool { return c.Name == name })
					if i < 0 {
						return "", fmt.Errorf("%s: no container %s", f[0], name)
					}
					st.Containers[i].Status, st.Containers[i].PID = executor.StatusNoTask, 0
				}
				if names, ok := strings.CutPrefix(a, "only="); ok {
					st.Containers = slices.DeleteFunc(st.Containers, func(c executor.ContainerState) bool {
						return !slices.Contains(strings.Split(names, ","), c.Name)
					})
				}
			}
			s.runtime[st.ID] = st
		}
	case "done":
		return "", s.done(args)
	case "fail":
		return "", s.fail(args)
	case "exit":
		ev := executor.Event{Kind: executor.EventExit, InstanceID: s.id(args[0]), Container: containerArg(args), Time: s.now}
		for _, a := range args[1:] {
			if code, ok := strings.CutPrefix(a, "code="); ok {
				ev.ExitCode, _ = strconv.Atoi(code)
			}
			ev.OOMKilled = ev.OOMKilled || a == "oom"
		}
		if st, ok := s.runtime[ev.InstanceID]; ok {
			for i := range st.Containers {
				if st.Containers[i].Name == ev.Container {
					st.Containers[i].Status, st.Containers[i].ExitCode, st.Containers[i].ExitedAt = executor.StatusExited, ev.ExitCode, s.now
				}
			}
		}
		s.c.Step(runtimeEvent{ev}, s.now)
	case "probe":
		kind, verdict, _ := strings.Cut(args[1], "=")
		s.c.Step(probeEvent{executor.ProbeResult{
			InstanceID: s.id(args[0]), Container: containerArg(args), Kind: executor.ProbeKind(kind),
			Healthy: verdict == "true", Message: "probe said so", Time: s.now,
		}}, s.now)
	case "view":
		v, err := s.view(d.input)
		if err != nil {
			return "", err
		}
		s.c.Step(viewEvent{v}, s.now)
	case "join":
		s.c.Step(joinEvent{strings.Join(args, " ")}, s.now)
	case "tick":
		dur, err := time.ParseDuration(args[0])
		if err != nil {
			return "", err
		}
		s.now = s.now.Add(dur)
		s.c.Step(tickEvent{resync: slices.Contains(args, "resync")}, s.now)
	case "ready":
		return s.ready(), nil
	case "status":
		return s.status(), nil
	default:
		return "", fmt.Errorf("unknown command %q", cmd)
	}
	return "", nil
}

func (s *scenario) newCore(args []string) {
	cfg := DefaultConfig("node-a")
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Allocatable = planner.Resources{MilliCPU: 4000, MemoryBytes: 8 << 30}
	cluster, dnsCfg := false, DNSConfig{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "node":
			cfg.NodeName, cfg.Labels = v, map[string]string{planner.LabelHostname: v}
		case "cluster":
			cluster = true
		case "dns":
			dnsCfg = DNSConfig{Server: nopDNS{}, Domain: "cluster.local", Nameserver: netip.MustParseAddr("10.0.0.1")}
		case "crash":
			cfg.CrashBackoff.Base, _ = time.ParseDuration(v)
		case "podnet":
			cfg.Network = DefaultNetwork()
			cfg.Network.Claim = parseClaim(cfg.NodeName, v) // podnet=SUBNET@SINCE: claimed in an earlier run
		}
	}
	s.now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.c = newCore(cfg, cluster, dnsCfg)
	s.runtime, s.pending, s.specs, s.alias = map[string]executor.InstanceState{}, map[string][]string{}, map[string]executor.InstanceSpec{}, map[string]string{}
	s.c.Step(tickEvent{}, s.now)
}

func (s *scenario) revision(manifests string, bad bool) error {
	n := len(s.revs) + 1
	rev := spec.Revision{Commit: fmt.Sprintf("rev%d", n), Message: "commit", Time: s.now}
	set, diags := spec.Load(fstest.MapFS{"app.yaml": {Data: []byte(manifests)}}, spec.DefaultLoadOptions())
	ev := source.Event{Revision: rev, Diagnostics: diags}
	if set == nil || bad {
		ev.Err = source.ErrRevisionRejected
		s.revs = append(s.revs, nil)
	} else {
		ev.Desired = &spec.Desired{Revision: rev, Objects: set}
		s.revs = append(s.revs, ev.Desired)
		for _, dep := range set.Deployments {
			hash := spec.InstanceHash(set, dep)
			for slot := range int(*dep.Spec.Replicas) + 8 {
				if id := planner.InstanceID(dep.Metadata.Namespace, dep.Metadata.Name, hash, slot); s.alias[id] == "" {
					s.alias[id] = fmt.Sprintf("%s@%d/%d", dep.Metadata.Name, n, slot) // named by the first revision that had it
				}
			}
		}
	}
	s.c.Step(revisionEvent{ev}, s.now)
	return nil
}

// id resolves an alias such as web@1/0 to the instance ID.
func (s *scenario) id(alias string) string {
	for id, a := range s.alias {
		if a == alias {
			return id
		}
	}
	return alias
}

func (s *scenario) name(id string) string {
	if a, ok := s.alias[id]; ok {
		return a
	}
	return id
}

// state is what the runtime holds of a running instance named by alias.
func (s *scenario) state(alias string) (executor.InstanceState, error) {
	name, rest, _ := strings.Cut(alias, "@")
	n, _, _ := strings.Cut(rest, "/")
	i, err := strconv.Atoi(n)
	if err != nil || i < 1 || i > len(s.revs) || s.revs[i-1] == nil {
		return executor.InstanceState{}, fmt.Errorf("%s: no such revision", alias)
	}
	set := s.revs[i-1].Objects
	dep := set.Deployment("", name)
	if dep == nil {
		dep = set.Deployment("default", name)
	}
	if dep == nil {
		return executor.InstanceState{}, fmt.Errorf("%s: no such Deployment", alias)
	}
	st := executor.InstanceState{
		ID: s.id(alias), Namespace: dep.Metadata.Namespace, Workload: name, SpecHash: spec.InstanceHash(set, dep),
		Revision: s.revs[i-1].Revision.Commit, Node: s.c.cfg.NodeName, GracePeriod: time.Second,
	}
	ps := &dep.Spec.Template.Spec
	for i, c := range ps.AllContainers() {
		cs := executor.ContainerState{Name: c.Name, Image: c.Image, Status: executor.StatusRunning, PID: 100}
		if i < len(ps.InitContainers) {
			cs.Init, cs.Sidecar = i+1, c.IsSidecar()
		}
		st.Containers = append(st.Containers, cs)
	}
	return st, nil
}

// containerArg is the container a command names with container=NAME, main by default.
func containerArg(args []string) string {
	for _, a := range args {
		if name, ok := strings.CutPrefix(a, "container="); ok {
			return name
		}
	}
	return "main"
}

func (s *scenario) done(only []string) error {
	var ids []string
	for id := range s.pending {
		if len(only) == 0 || slices.Contains(only, s.name(id)) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		for _, kind := range s.pending[id] {
			switch {
			case kind == "start":
				// As the runtime does: the containers of the stage that do not exist are
				// created and started; those that exist are left as they are.
				sp := s.specs[id]
				st, ok := s.runtime[id]
				if !ok {
					st = executor.InstanceState{ID: id, Namespace: sp.Namespace, Workload: sp.Workload, SpecHash: sp.SpecHash, Revision: sp.Revision, Node: sp.Node, GracePeriod: sp.GracePeriod, Addr: sp.Addr}
				}
				for _, c := range sp.StageContainers() {
					i := slices.IndexFunc(st.Containers, func(cs executor.ContainerState) bool { return cs.Name == c.Name })
					switch {
					case i < 0:
						st.Containers = append(st.Containers, executor.ContainerState{Name: c.Name, Image: c.Image, Status: executor.StatusRunning, PID: 100, Init: c.Init, Sidecar: c.Sidecar})
					case st.Containers[i].Status == executor.StatusNoTask:
						st.Containers[i].Status, st.Containers[i].PID = executor.StatusRunning, 100
					}
				}
				s.runtime[id] = st
				s.c.Step(resultEvent{kind: actionStart, id: id, pulled: s.now}, s.now)
			case kind == "stop":
				delete(s.runtime, id)
				s.c.Step(resultEvent{kind: actionStop, id: id}, s.now)
			case strings.HasPrefix(kind, "restart "):
				name := strings.TrimPrefix(kind, "restart ")
				if st, ok := s.runtime[id]; ok {
					for i := range st.Containers {
						if st.Containers[i].Name == name {
							st.Containers[i].Status = executor.StatusRunning
							st.Containers[i].Restarts++
						}
					}
				}
				s.c.Step(resultEvent{kind: actionRestart, id: id, container: name}, s.now)
			}
		}
		delete(s.pending, id)
	}
	if s.listing && len(only) == 0 {
		s.listing = false
		states := make([]executor.InstanceState, 0, len(s.runtime))
		for _, st := range s.runtime {
			states = append(states, st)
		}
		sort.Slice(states, func(i, j int) bool { return states[i].ID < states[j].ID })
		s.c.Step(listingEvent{states: states, began: s.now}, s.now)
	}
	return nil
}

func (s *scenario) fail(args []string) error {
	id := s.id(args[0])
	var err error
	switch strings.TrimPrefix(args[1], "err=") {
	case "pull":
		err = fmt.Errorf("%w: no such image", executor.ErrImagePull)
	case "config":
		err = fmt.Errorf("%w: no such ConfigMap", executor.ErrConfig)
	case "forbidden":
		err = fmt.Errorf("%w: privileged", executor.ErrForbidden)
	default:
		err = errors.New("it broke")
	}
	if !slices.Contains(s.pending[id], "start") {
		return fmt.Errorf("no start of %s in flight", args[0])
	}
	delete(s.pending, id)
	s.c.Step(resultEvent{kind: actionStart, id: id, err: err}, s.now)
	return nil
}

func (s *scenario) view(input string) (gossip.View, error) {
	var nodes []gossip.NodeInfo
	var instances []gossip.InstanceInfo
	for _, line := range lines(input) {
		f := strings.Fields(line)
		switch f[0] {
		case "node":
			n := gossip.NodeInfo{
				Name: f[1], Alive: !slices.Contains(f, "dead"), Labels: map[string]string{planner.LabelHostname: f[1]},
				MilliCPU: 4000, MemoryBytes: 8 << 30, MaxInstances: planner.DefaultMaxInstances,
				Addr: fmt.Sprintf("10.0.0.%d", len(nodes)+2),
			}
			for _, a := range f[2:] {
				if v, ok := strings.CutPrefix(a, "subnet="); ok { // subnet=SUBNET@SINCE
					cl := parseClaim(n.Name, v)
					n.PodSubnet, n.PodSubnetSince = cl.Subnet.String(), cl.Since
				}
				if v, ok := strings.CutPrefix(a, "addr="); ok {
					n.Addr = v
				}
			}
			nodes = append(nodes, n)
		case "instance":
			st, err := s.state(f[1])
			if err != nil {
				return gossip.View{}, err
			}
			info := gossip.InstanceInfo{ID: st.ID, Namespace: st.Namespace, Workload: st.Workload, SpecHash: st.SpecHash}
			for _, a := range f[2:] {
				if n, ok := strings.CutPrefix(a, "node="); ok {
					info.Node = n
				}
				if addr, ok := strings.CutPrefix(a, "addr="); ok {
					info.Addr = addr
				}
				info.Ready = info.Ready || a == "ready"
				info.Running = info.Running || a == "running" || a == "ready"
			}
			if i := slices.IndexFunc(nodes, func(n gossip.NodeInfo) bool { return n.Name == info.Node }); info.Addr == "" && i >= 0 {
				info.Addr = nodes[i].Addr // on its node's network
			}
			instances = append(instances, info)
		}
	}
	v := gossip.NewView(nodes, instances)
	for i, o := range v.Owners {
		for _, last := range s.lastView.Owners {
			if last.Node == o.Node && reflect.DeepEqual(last.Instances, o.Instances) {
				v.Owners[i].Instances = last.Instances
			}
		}
	}
	s.lastView = v
	return v, nil
}

// ready prints what the core decided and hands the actions to the fake runtime.
func (s *scenario) ready() string {
	rd := s.c.Ready()
	s.checkStatusCaches(rd.status)
	s.checkServiceCaches()
	var out []string
	if rd.markApplying != "" {
		out = append(out, "mark applying "+rd.markApplying)
	}
	if rd.planInputs != nil {
		out = append(out, "plan")
	}
	for _, p := range rd.probes {
		switch {
		case p.spec != nil:
			out = append(out, "probes start "+s.name(p.id))
		case p.container != "":
			out = append(out, "probes restart "+s.name(p.id)+" "+p.container)
		default:
			out = append(out, "probes stop "+s.name(p.id))
		}
	}
	if rd.subnet != nil {
		out = append(out, fmt.Sprintf("subnet %s since %d", rd.subnet.Subnet, rd.subnet.Since))
	}
	for _, st := range rd.stops {
		line := "stop " + s.name(st.id)
		if st.drain > 0 {
			line += " after " + st.drain.String()
		}
		out = append(out, line)
		s.pending[st.id] = append(s.pending[st.id], "stop")
	}
	for _, sp := range rd.starts {
		line := "start " + s.name(sp.ID)
		if sp.Addr.IsValid() {
			line += " addr=" + sp.Addr.String()
		}
		if slices.ContainsFunc(sp.Containers, func(c executor.ContainerSpec) bool { return c.Init > 0 }) {
			var names []string
			for _, c := range sp.StageContainers() {
				names = append(names, c.Name)
			}
			line += " [" + strings.Join(names, " ") + "]" // the stage: what must exist once it is done
		}
		out = append(out, line)
		s.pending[sp.ID] = append(s.pending[sp.ID], "start")
		s.specs[sp.ID] = sp
	}
	for _, r := range rd.restarts {
		out = append(out, "restart "+s.name(r.id)+" "+r.container)
		s.pending[r.id] = append(s.pending[r.id], "restart "+r.container)
	}
	if rd.list {
		out = append(out, "list")
		s.listing = true
	}
	if rd.instances != nil {
		var gs []string
		for _, in := range rd.instances {
			state := "running"
			if in.Ready {
				state = "ready"
			}
			gs = append(gs, s.name(in.ID)+" "+state)
		}
		out = append(out, "gossip ["+strings.Join(gs, ", ")+"]")
	}
	if rd.meta != nil && rd.meta.Revision != "" {
		out = append(out, "gossip meta revision="+rd.meta.Revision)
	}
	for _, svc := range rd.services {
		if svc.ExternalName != "" {
			out = append(out, fmt.Sprintf("dns %s alias %s", svc.Name, svc.ExternalName))
			continue
		}
		var eps []string
		for _, e := range svc.Endpoints {
			state := "unready"
			if e.Ready {
				state = "ready"
			}
			eps = append(eps, s.name(e.Hostname)+" "+e.Addr.String()+" "+state)
		}
		var ports []string
		for _, p := range svc.Ports {
			ports = append(ports, fmt.Sprintf("%s %d/%s", p.Name, p.Port, p.Protocol))
		}
		out = append(out, fmt.Sprintf("dns %s ports [%s] endpoints [%s]", svc.Name, strings.Join(ports, ", "), strings.Join(eps, ", ")))
	}
	if rd.proxy != nil {
		for _, svc := range *rd.proxy {
			for _, p := range svc.Ports {
				var eps []string
				for _, e := range p.Endpoints {
					eps = append(eps, e.String())
				}
				line := fmt.Sprintf("proxy %s %s:%d/%s", svc.Name, svc.VIP, p.Port, p.Protocol)
				if p.NodePort != 0 {
					line += fmt.Sprintf(" nodePort %d", p.NodePort)
				}
				out = append(out, line+" -> ["+strings.Join(eps, ", ")+"]")
			}
		}
		if len(*rd.proxy) == 0 {
			out = append(out, "proxy []")
		}
	}
	if rd.peers != nil {
		var ps []string
		for _, p := range *rd.peers {
			ps = append(ps, fmt.Sprintf("%s %s via %s", p.Node, p.Subnet, p.Addr))
		}
		out = append(out, "peers ["+strings.Join(ps, ", ")+"]")
	}
	if rd.markSurvived != "" {
		out = append(out, "mark survived "+rd.markSurvived)
	}
	out = append(out, "wake in "+rd.wake.Sub(s.now).String())
	s.c.Advance()
	return strings.Join(out, "\n")
}

// status prints this node's records as status shows them.
func (s *scenario) status() string {
	st := s.c.statusSnapshot()
	var out []string
	for _, w := range st.Workloads {
		out = append(out, fmt.Sprintf("%s: %d/%d ready", w.Name, w.Ready, w.Replicas))
		for _, in := range w.Instances {
			line := fmt.Sprintf("  %s %s %s", s.name(in.ID), in.Node, in.Phase)
			if in.Restarts > 0 {
				line += fmt.Sprintf(" restarts=%d", in.Restarts)
			}
			if in.LastExit != "" {
				line += fmt.Sprintf(" last-exit=%q", in.LastExit)
			}
			out = append(out, line)
			if slices.ContainsFunc(in.Containers, func(c ContainerStatus) bool { return c.Init }) {
				var cs []string
				for _, c := range in.Containers {
					cs = append(cs, c.Name+"="+c.State)
				}
				out = append(out, "    "+strings.Join(cs, " "))
			}
		}
	}
	out = append(out, fmt.Sprintf("converged=%v adopted=%v", st.Converged, st.Adopted))
	if st.NotJoined != "" {
		out = append(out, "not joined: "+st.NotJoined)
	}
	return strings.Join(out, "\n")
}

// nopDNS stands for the DNS server: the scenarios print what it would be given.
type nopDNS struct{}

func (nopDNS) Swap(*dns.Snapshot) {}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// checkStatusCaches fails the scenario when the status snapshot built from the core's
// caches differs from one built from nothing: a cache that missed a change.
func (s *scenario) checkStatusCaches(got *Status) {
	s.t.Helper()
	saved := s.c.index
	s.c.index.status, s.c.index.workloads, s.c.index.nodes = nil, nil, nil
	s.c.index.statusBase, s.c.index.statusBaseOf, s.c.index.statusStale, s.c.index.statusMerged = nil, nil, nil, nil
	want := s.c.statusSnapshot()
	s.c.index = saved
	if g, w := mustJSON(s.t, got), mustJSON(s.t, want); !bytes.Equal(g, w) {
		s.t.Fatalf("status from the caches differs from status built anew:\ncached: %s\nanew:   %s", g, w)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseClaim reads a subnet claim written SUBNET@SINCE ("" is no claim).
func parseClaim(node, v string) network.SubnetClaim {
	subnet, since, _ := strings.Cut(v, "@")
	p, _ := netip.ParsePrefix(subnet)
	n, _ := strconv.ParseInt(since, 10, 64)
	return network.SubnetClaim{Node: node, Subnet: p, Since: n}
}

// checkServiceCaches fails the scenario when the Services' records kept between Readys
// differ from records made from nothing: a cache that missed a change.
func (s *scenario) checkServiceCaches() {
	s.t.Helper()
	if s.c.desired == nil || s.c.svc.workloads == nil {
		return
	}
	saved := s.c.svc
	s.c.svc = serviceCache{}
	s.c.refreshServices()
	fresh := s.c.svc
	s.c.svc = saved
	for _, c := range []struct {
		what      string
		got, want any
	}{{"DNS", saved.dns, fresh.dns}, {"proxy", saved.proxy, fresh.proxy}} {
		if g, w := mustJSON(s.t, c.got), mustJSON(s.t, c.want); !bytes.Equal(g, w) {
			s.t.Fatalf("%s records from the caches differ from records made anew:\ncached: %s\nanew:   %s", c.what, g, w)
		}
	}
}
