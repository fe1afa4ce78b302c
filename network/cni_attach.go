package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// record is what Attach keeps in attachments/<id>.json. It is written before anything
// else exists and removed after everything else is gone, so an ID with no record has
// nothing of Attach's left, or only what Collect finds by scanning.
type record struct {
	// ConfList is the configuration the plugins were run with; Detach runs them with it
	// again, whatever the subnet is by then.
	ConfList json.RawMessage `json:"confList"`
	// Ports are the port mappings portmap got; its DEL needs them to find its rules.
	Ports []cniPortMapping `json:"ports,omitempty"`
	// Addr is set once the plugins succeeded: a record without it is a half-done Attach.
	Addr netip.Addr `json:"addr"`
}

// Attach gives instance id a network namespace of its own with an address from the pod
// subnet and forwards ports of the node to it. The address is addr when valid (the agent
// chooses addresses; one outside the subnet or held by another instance is refused), else
// the next free one. The namespace's loopback is up and its default route goes through the
// gateway on the bridge.
//
// Attach of an ID already attached returns the existing attachment (the ports it was
// attached with stay), or an error if it has another address than addr; one left half
// done (by a crash, or an Attach that failed and could not undo itself) is undone first.
// A failed Attach leaves nothing behind. Before SetSubnet it fails with ErrNoSubnet.
func (n *PodNetwork) Attach(ctx context.Context, id string, addr netip.Addr, ports []PortMapping) (Attachment, error) {
	if err := CheckID(id); err != nil {
		return Attachment{}, err
	}
	mappings, err := cniPorts(ports)
	if err != nil {
		return Attachment{}, err
	}
	defer n.lock(id)()
	if a, ok := n.attached(id); ok {
		if addr.IsValid() && a.Addr != addr {
			return Attachment{}, fmt.Errorf("network: attach %s at %v: attached already at %v", id, addr, a.Addr)
		}
		return a, nil
	}
	if err := n.detach(ctx, id, false); err != nil {
		return Attachment{}, fmt.Errorf("network: attach %s: undo an earlier attempt: %w", id, err)
	}
	subnet, mtu := n.settings()
	switch {
	case !subnet.IsValid():
		return Attachment{}, fmt.Errorf("network: attach %s: %w", id, ErrNoSubnet)
	case addr.IsValid() && !subnet.Contains(addr):
		return Attachment{}, fmt.Errorf("network: attach %s: address %v is outside the pod subnet %v", id, addr, subnet)
	}
	a, err := n.attach(ctx, id, addr, subnet, mtu, mappings)
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if derr := n.detach(cctx, id, true); derr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", derr))
		}
		return Attachment{}, fmt.Errorf("network: attach %s: %w", id, err)
	}
	return a, nil
}

// attach does Attach's work; the caller undoes what it did if it fails.
func (n *PodNetwork) attach(ctx context.Context, id string, addr netip.Addr, subnet netip.Prefix, mtu int, ports []cniPortMapping) (Attachment, error) {
	list, err := n.confList(subnet, mtu, len(ports) > 0)
	if err != nil {
		return Attachment{}, err
	}
	rec := record{ConfList: list.Bytes, Ports: ports}
	if err := n.writeRecord(id, rec); err != nil {
		return Attachment{}, err
	}
	nsPath := n.netnsPath(id)
	if err := CreateNetNS(nsPath); err != nil {
		return Attachment{}, err
	}
	res, err := n.cni.AddNetworkList(ctx, list, n.runtimeConf(id, nsPath, addr, ports))
	if err != nil {
		return Attachment{}, fmt.Errorf("CNI ADD: %w", err)
	}
	if rec.Addr, err = instanceAddr(res); err != nil {
		return Attachment{}, err
	}
	if addr.IsValid() && rec.Addr != addr {
		return Attachment{}, fmt.Errorf("asked for address %v, the plugins gave %v", addr, rec.Addr)
	}
	if err := n.writeRecord(id, rec); err != nil {
		return Attachment{}, err
	}
	return Attachment{ID: id, Netns: nsPath, Addr: rec.Addr}, nil
}

// instanceAddr picks the address the plugins gave the instance's own interface.
func instanceAddr(res types.Result) (netip.Addr, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("CNI result: %w", err)
	}
	for _, ip := range r.IPs {
		if ip.Interface != nil && (*ip.Interface < 0 || *ip.Interface >= len(r.Interfaces) || r.Interfaces[*ip.Interface].Sandbox == "") {
			continue // an address of the node's side, not the instance's
		}
		if a, ok := netip.AddrFromSlice(ip.Address.IP); ok {
			return a.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("CNI result gives the instance no address: %v", r.IPs)
}

// attached returns id's attachment when it is complete: a record with an address and a
// mounted namespace.
func (n *PodNetwork) attached(id string) (Attachment, bool) {
	rec, err := n.readRecord(id)
	if err != nil || !rec.Addr.IsValid() || !IsNetNS(n.netnsPath(id)) {
		return Attachment{}, false
	}
	return Attachment{ID: id, Netns: n.netnsPath(id), Addr: rec.Addr}, true
}

// Detach undoes Attach: the plugins' DEL (which releases the address, the host end of
// the interface and the port mappings), then the namespace's mount and the record. It is
// idempotent, and undoes a half-done Attach as well. When the plugins fail, what remains
// stays recorded so that a later Detach or Collect can finish.
func (n *PodNetwork) Detach(ctx context.Context, id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	defer n.lock(id)()
	if err := n.detach(ctx, id, false); err != nil {
		return fmt.Errorf("network: detach %s: %w", id, err)
	}
	return nil
}

// detach does Detach's work under id's lock. Without force, an ID with neither a record
// nor a namespace is taken to have nothing left (Attach writes the record first and
// Detach removes it last); with force, the plugins' DEL runs anyway, for what Collect
// found in the cache or the IPAM reservations alone.
func (n *PodNetwork) detach(ctx context.Context, id string, force bool) error {
	nsPath := n.netnsPath(id)
	rec, recErr := n.readRecord(id)
	_, nsErr := os.Lstat(nsPath)
	if errors.Is(recErr, fs.ErrNotExist) && errors.Is(nsErr, fs.ErrNotExist) && !force {
		return nil
	}
	list, err := n.delConfList(id, rec, recErr)
	if err != nil {
		return err
	}
	// The plugins undo the namespace's side only in a namespace: a mount point left
	// without its mount by a crash is passed as none.
	delNS := ""
	if IsNetNS(nsPath) {
		delNS = nsPath
	}
	if err := n.cni.DelNetworkList(ctx, list, n.runtimeConf(id, delNS, netip.Addr{}, rec.Ports)); err != nil {
		return fmt.Errorf("CNI DEL: %w", err)
	}
	if err := RemoveNetNS(nsPath); err != nil {
		return err
	}
	return n.removeRecord(id)
}

// delConfList is the configuration to undo id with: the one its record holds, else the
// one libcni cached at ADD, else the current one (host-local releases by ID whatever the
// subnet, and no record means portmap was never run).
func (n *PodNetwork) delConfList(id string, rec record, recErr error) (*libcni.NetworkConfigList, error) {
	if recErr == nil && len(rec.ConfList) > 0 {
		if list, err := parseConfList(rec.ConfList); err == nil {
			return list, nil
		}
	}
	if recErr != nil && !errors.Is(recErr, fs.ErrNotExist) {
		n.cfg.Logger.Warn("network: unreadable attachment record, undoing with the cached or current configuration", "id", id, "err", recErr)
	}
	subnet, mtu := n.settings()
	if !subnet.IsValid() {
		subnet = placeholderSubnet
	}
	base, err := n.confList(subnet, mtu, false)
	if err != nil {
		return nil, err
	}
	if b, _, err := n.cni.GetNetworkListCachedConfig(base, n.runtimeConf(id, "", netip.Addr{}, nil)); err == nil && len(b) > 0 {
		if list, err := parseConfList(b); err == nil {
			return list, nil
		}
	}
	return base, nil
}

// placeholderSubnet stands in for the pod subnet when undoing an attachment before one
// is set: the plugins undo an attachment by ID, not by subnet, but their configuration
// must have one.
var placeholderSubnet = netip.MustParsePrefix("10.0.0.0/24")

// Attachments returns the complete attachments found under StateDir, sorted by ID: what
// a restarted daemon has. Half-done ones are left out (Collect or Attach undoes them).
func (n *PodNetwork) Attachments() ([]Attachment, error) {
	ids, err := n.recordIDs()
	if err != nil {
		return nil, err
	}
	var out []Attachment
	for _, id := range ids {
		if a, ok := n.attached(id); ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// Collect detaches every instance for which keep returns false, whatever is left of it:
// a namespace, a record, a libcni cache entry or an IPAM reservation, so that nothing an
// instance held outlives it after a crash. keep must return true for every ID being
// attached while Collect runs, or Collect may undo it; keep is called with the ID's lock
// held, so it must not call the PodNetwork. Collect tries every ID and returns the errors
// together.
func (n *PodNetwork) Collect(ctx context.Context, keep func(id string) bool) error {
	found, err := n.foundIDs()
	if err != nil {
		return fmt.Errorf("network: collect: %w", err)
	}
	var errs []error
	for _, id := range found {
		if err := CheckID(id); err != nil {
			n.cfg.Logger.Warn("network: collect: not an instance ID, left alone", "name", id)
			continue
		}
		if err := n.collect(ctx, id, keep); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network: collect: %w", err)
	}
	return nil
}

// collect detaches id unless keep says otherwise. keep is asked under id's lock, so an
// Attach of id either finished before (and keep knows of it) or waits until after.
func (n *PodNetwork) collect(ctx context.Context, id string, keep func(id string) bool) error {
	defer n.lock(id)()
	if keep(id) {
		return nil
	}
	n.cfg.Logger.Info("network: collect: detach an instance that no longer exists", "id", id)
	return n.detach(ctx, id, true)
}

// foundIDs lists, sorted and once each, the IDs that anything under StateDir belongs to.
func (n *PodNetwork) foundIDs() ([]string, error) {
	var ids []string
	records, err := n.recordIDs()
	if err != nil {
		return nil, err
	}
	ids = append(ids, records...)
	for _, scan := range []func() ([]string, error){n.netnsIDs, n.cacheIDs, n.ipamIDs} {
		found, err := scan()
		if err != nil {
			return nil, err
		}
		ids = append(ids, found...)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// netnsIDs are the names under netns/.
func (n *PodNetwork) netnsIDs() ([]string, error) {
	return dirNames(n.netnsDir(), func(name string) (string, bool) { return name, true })
}

// recordIDs are the IDs with a record, finished or not.
func (n *PodNetwork) recordIDs() ([]string, error) {
	return dirNames(n.recordDir(), func(name string) (string, bool) {
		id, ok := strings.CutSuffix(name, ".json")
		if !ok {
			id, ok = strings.CutSuffix(name, ".json.tmp")
		}
		return id, ok
	})
}

// cacheIDs are the IDs libcni holds a cached result for.
func (n *PodNetwork) cacheIDs() ([]string, error) {
	prefix, suffix := n.cfg.NetworkName+"-", "-"+ifName
	return dirNames(filepath.Dir(n.cachePath("x")), func(name string) (string, bool) {
		id, ok := strings.CutPrefix(name, prefix)
		if !ok {
			return "", false
		}
		return strings.CutSuffix(id, suffix)
	})
}

// ipamIDs are the IDs host-local reserved an address for. Its files are named by address
// and hold "<id>\r\n<ifname>"; its lock and last-reserved files are not reservations.
func (n *PodNetwork) ipamIDs() ([]string, error) {
	dir := filepath.Join(n.ipamDir(), n.cfg.NetworkName)
	names, err := dirNames(dir, func(name string) (string, bool) {
		_, err := netip.ParseAddr(name)
		return name, err == nil
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(names))
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // released meanwhile
			}
			return nil, err
		}
		id, _, _ := bytes.Cut(b, []byte("\r\n"))
		ids = append(ids, string(bytes.TrimSpace(id)))
	}
	return ids, nil
}

// dirNames maps the names in dir through pick, keeping those it accepts; a missing dir
// has none.
func dirNames(dir string, pick func(name string) (string, bool)) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if id, ok := pick(e.Name()); ok {
			out = append(out, id)
		}
	}
	return out, nil
}

// Records: written to a temporary name and renamed, so a crash leaves the old record or
// the new one, and at worst a .tmp file that Collect and Detach remove.

func (n *PodNetwork) recordPath(id string) string {
	return filepath.Join(n.recordDir(), id+".json")
}

func (n *PodNetwork) readRecord(id string) (record, error) {
	var rec record
	b, err := os.ReadFile(n.recordPath(id))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return record{}, fmt.Errorf("attachment record %s: %w", id, err)
	}
	return rec, nil
}

func (n *PodNetwork) writeRecord(id string, rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := n.recordPath(id) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write attachment record: %w", err)
	}
	if err := os.Rename(tmp, n.recordPath(id)); err != nil {
		return fmt.Errorf("write attachment record: %w", err)
	}
	return nil
}

func (n *PodNetwork) removeRecord(id string) error {
	var errs []error
	for _, p := range []string{n.recordPath(id) + ".tmp", n.recordPath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
