package gitops

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// peak runs f and returns the most heap it saw in use (sampled every
// millisecond, from the heap in use before f) and the growth of the
// process's peak RSS (VmHWM, reset before f where the kernel allows it).
func peak(t *testing.T, f func()) (heap, rss uint64) {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM to the current RSS
	rss0 := vmHWM(t)
	var top uint64
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			top = max(top, ms.HeapAlloc)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	f()
	close(done)
	wg.Wait()
	if top > base {
		heap = top - base
	}
	if r := vmHWM(t); r > rss0 {
		rss = r - rss0
	}
	return heap, rss
}

func vmHWM(t *testing.T) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// A 200 MB YAML file in a commit costs loading it no more than a small,
// bounded amount of memory: its size is read from the object header and
// its content never leaves the object store. The revision is rejected at
// the file, as berth validate would. (Before: +294 MiB of heap. The fetch
// is go-git's and is only logged: it holds each object whole while
// indexing the pack, and the in-process server for local paths holds it
// again for its delta search.)
func TestLargeFileMemory(t *testing.T) {
	up := newUpstream(t, "main")
	up.copyExample("")
	f, err := os.Create(filepath.Join(up.dir, "big.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n")
	for i := range 200 << 20 / 32 {
		w.WriteString("  k" + strconv.Itoa(i) + ": " + strings.Repeat("v", 24-len(strconv.Itoa(i))) + "\n")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c := up.commit("a 200 MB file")
	s, _ := newTestSyncer(t, up.dir)

	fetchHeap, fetchRSS := peak(t, func() {
		if _, err := s.src.Fetch(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	})
	var diags []string
	revHeap, revRSS := peak(t, func() {
		rev, err := s.Revision(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range rev.Diagnostics {
			diags = append(diags, d.String())
		}
	})
	t.Logf("fetch: heap +%d MiB, peak RSS +%d MiB; Revision: heap +%d MiB, peak RSS +%d MiB", fetchHeap>>20, fetchRSS>>20, revHeap>>20, revRSS>>20)
	if len(diags) != 1 || !strings.HasPrefix(diags[0], "big.yaml:1:1: error: file is larger than the limit") {
		t.Errorf("diagnostics = %q", diags)
	}
	if revHeap > 64<<20 {
		t.Errorf("Revision of a commit with a 200 MB file grew the heap by %d MiB", revHeap>>20)
	}
}
