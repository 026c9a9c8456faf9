package daemon

import (
	"time"

	"golang.org/x/sys/windows"
)

// bootID is the boot time: now minus the time since boot (GetTickCount64,
// which counts sleep too). See sameBoot for why it is compared with slack.
func bootID() (string, error) {
	return bootTimeID(time.Now().Add(-windows.DurationSinceBoot())), nil
}
