package misuse

import "net"

// defaultInterface on Windows is the first interface that is up, not a
// loopback, and has an IPv4 address. Libraries with several adapters should
// set capture.interface.
func defaultInterface() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return i.Name
			}
		}
	}
	return ""
}
