package daemon

import (
	"fmt"
	"os"
	"strings"
)

// bootID reads the kernel's random id of this boot.
func bootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("reading the boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" || len(id) > 64 {
		return "", fmt.Errorf("reading the boot id: unexpected content %q", id)
	}
	return id, nil
}
