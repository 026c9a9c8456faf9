//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// usage is what /proc says of a process tree at one moment.
type usage struct {
	ticks  int64 // utime+stime, in clock ticks (1/100 s)
	ctxsw  int64 // voluntary + involuntary context switches, all threads
	hwmKiB int64 // peak RSS, summed over the processes
}

// treeUsage sums usage over pid and its descendants (tshark runs
// dumpcap as a child).
func treeUsage(pid int) usage {
	var u usage
	for _, p := range tree(pid) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		u.ticks += ut + st
		u.hwmKiB += statusField(p, "VmHWM:")
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(p) + "/task/*")
		for _, t := range tasks {
			tid, _ := strconv.Atoi(filepath.Base(t))
			u.ctxsw += taskField(p, tid, "voluntary_ctxt_switches:") + taskField(p, tid, "nonvoluntary_ctxt_switches:")
		}
	}
	return u
}

func tree(root int) []int {
	out := []int{root}
	ents, _ := os.ReadDir("/proc")
	parent := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		pp, _ := strconv.Atoi(f[1])
		parent[pp] = append(parent[pp], pid)
	}
	for i := 0; i < len(out); i++ {
		out = append(out, parent[out[i]]...)
	}
	return out
}

func statusField(pid int, key string) int64 {
	return field("/proc/"+strconv.Itoa(pid)+"/status", key)
}

func taskField(pid, tid int, key string) int64 {
	return field("/proc/"+strconv.Itoa(pid)+"/task/"+strconv.Itoa(tid)+"/status", key)
}

func field(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}
