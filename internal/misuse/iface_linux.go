package misuse

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// defaultInterface is the interface of the IPv4 default route, read from
// /proc/net/route: the PC's own traffic to the internet passes there.
func defaultInterface() string {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return ""
	}
	defer f.Close()
	return parseRoutes(bufio.NewScanner(f))
}

func parseRoutes(sc *bufio.Scanner) string {
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// Iface Destination Gateway Flags ... Mask: a default route has
		// destination and mask 0 and the route-is-up flag (0x1).
		if len(f) >= 8 && f[1] == "00000000" && f[7] == "00000000" && flagsUp(f[3]) {
			return f[0]
		}
	}
	return ""
}

func flagsUp(hex string) bool {
	v, err := strconv.ParseUint(hex, 16, 32)
	return err == nil && v&1 == 1
}
