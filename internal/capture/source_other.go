//go:build !linux && !windows

package capture

import (
	"fmt"
	"runtime"

	"github.com/gopacket/gopacket/layers"
)

func interfaceLinkType(string) (layers.LinkType, error) {
	return 0, fmt.Errorf("live capture is not supported on %s", runtime.GOOS)
}

func openSource(Settings) (source, error) {
	return nil, fmt.Errorf("live capture is not supported on %s", runtime.GOOS)
}
