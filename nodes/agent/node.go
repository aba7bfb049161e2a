package agent

import (
	"bufio"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/appliance/state"
)

// NodeInfo describes this machine for registration: its capacity (all
// CPUs, MemTotal) and the well-known labels Kubernetes nodes carry, plus
// extra labels. address is where the agent's log server listens.
func NodeInfo(name, address, dataDir string, extra map[string]string) (state.Node, error) {
	mem, err := memTotal("/proc/meminfo")
	if err != nil {
		return state.Node{}, err
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dataDir, &fs); err != nil {
		return state.Node{}, fmt.Errorf("the size of the data directory's filesystem: %w", err)
	}
	labels := map[string]string{
		"kubernetes.io/hostname": name,
		"kubernetes.io/os":       goruntime.GOOS,
		"kubernetes.io/arch":     goruntime.GOARCH,
	}
	for k, v := range extra {
		labels[k] = v
	}
	return state.Node{Name: name, Address: address, Labels: labels,
		CPUMilli: int64(goruntime.NumCPU()) * 1000, MemoryBytes: mem, EphemeralBytes: int64(fs.Blocks) * fs.Bsize, FreeBytes: int64(fs.Bavail) * fs.Bsize}, nil
}

// memTotal reads MemTotal (in kB) from a meminfo file.
func memTotal(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: MemTotal: %w", path, err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no MemTotal", path)
}
