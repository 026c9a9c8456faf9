package witness

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
)

// Allowed is one destination the relay may connect to: a witness's
// host:port, as the service asks for it, and the addresses the host had
// when the relay started. The relay dials those addresses and no others;
// it never resolves a name itself.
type Allowed struct {
	HostPort string   `json:"host_port"`
	Addrs    []string `json:"addrs"`
}

// Resolve returns the destinations of the witnesses at urls, their host
// names resolved with r (net.DefaultResolver when nil).
func Resolve(ctx context.Context, urls []string, r *net.Resolver) ([]Allowed, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	byHP := map[string]*Allowed{}
	for _, u := range urls {
		hp, err := hostPort(u)
		if err != nil {
			return nil, err
		}
		if _, ok := byHP[hp]; ok {
			continue
		}
		host, _, _ := net.SplitHostPort(hp)
		var addrs []string
		if ip, err := netip.ParseAddr(host); err == nil {
			addrs = []string{ip.Unmap().String()}
		} else {
			ips, err := r.LookupNetIP(ctx, "ip", host)
			if err != nil {
				return nil, fmt.Errorf("resolving witness host %q: %w", host, err)
			}
			for _, ip := range ips {
				addrs = append(addrs, ip.Unmap().String())
			}
		}
		slices.Sort(addrs)
		byHP[hp] = &Allowed{HostPort: hp, Addrs: slices.Compact(addrs)}
	}
	out := make([]Allowed, 0, len(byHP))
	for _, a := range byHP {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].HostPort < out[j].HostPort })
	return out, nil
}

// Prefixes returns the addresses of as as systemd's IPAddressAllow wants
// them: one /32 or /128 prefix each, sorted, no repeats.
func Prefixes(as []Allowed) []string {
	var out []string
	for _, a := range as {
		for _, s := range a.Addrs {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				continue
			}
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()).String())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// maxAllowedFile bounds what ReadAllowed reads.
const maxAllowedFile = 1 << 20

// WriteAllowed writes as to path (through a temporary file and a rename),
// private to its owner.
func WriteAllowed(path string, as []Allowed) error {
	b, err := json.MarshalIndent(as, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".allowed-*")
	if err != nil {
		return fmt.Errorf("writing the relay's destinations: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the relay's destinations: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the relay's destinations: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing the relay's destinations: %w", err)
	}
	return nil
}

// ReadAllowed reads what WriteAllowed wrote; every address must be an IP
// address.
func ReadAllowed(path string) ([]Allowed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the relay's destinations: %w", err)
	}
	defer f.Close()
	var as []Allowed
	dec := json.NewDecoder(&limited{f, maxAllowedFile})
	dec.DisallowUnknownFields()
	if err := dec.Decode(&as); err != nil {
		return nil, fmt.Errorf("reading the relay's destinations %s: %w", path, err)
	}
	for _, a := range as {
		if _, _, err := net.SplitHostPort(a.HostPort); err != nil {
			return nil, fmt.Errorf("reading the relay's destinations %s: %q: %w", path, a.HostPort, err)
		}
		for _, s := range a.Addrs {
			if _, err := netip.ParseAddr(s); err != nil {
				return nil, fmt.Errorf("reading the relay's destinations %s: %q is not an IP address", path, s)
			}
		}
	}
	return as, nil
}

type limited struct {
	f *os.File
	n int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("longer than %d bytes", maxAllowedFile)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}
