package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"testing"

	"github.com/berth/berth/appliance/state"
	"github.com/berth/berth/appliance/state/statetest"
)

// backupFile frames state as SaveSnapshot does: header, state, checksum.
func backupFile(t testing.TB, state []byte) []byte {
	t.Helper()
	hdr, err := json.Marshal(backupHeader{Format: backupFormat, Version: backupVersion, Index: 7, Term: 2, Size: int64(len(state))})
	if err != nil {
		t.Fatal(err)
	}
	body := append(append(hdr, '\n'), state...)
	sum := sha256.Sum256(body)
	trailer, err := json.Marshal(backupTrailer{SHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	return append(append(body, trailer...), '\n')
}

func snapshotOf(t testing.TB, s *state.State) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := state.WriteSnapshot(&buf, s); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzReadSnapshot: any bytes give a state or an error, never a panic, and
// a state that reads back writes out the same way again.
func FuzzReadSnapshot(f *testing.F) {
	f.Add(snapshotOf(f, statetest.Filled()))
	f.Add(snapshotOf(f, &state.State{}))
	for _, s := range []string{"", "\n", `{"format":"berth-state","version":1}`, `{"format":"berth-state","version":1}` + "\n{}",
		`{"format":"berth-state","version":2}` + "\n{}", `{"format":"berth-state","version":1}` + "\n" + `{"nodes":{"a":null}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := state.ReadSnapshot(bytes.NewReader(data))
		if err != nil {
			return
		}
		again, err := state.ReadSnapshot(bytes.NewReader(snapshotOf(t, s)))
		if err != nil {
			t.Fatalf("a state read from a snapshot does not read back: %v", err)
		}
		if !bytes.Equal(statetest.Encoded(t, s), statetest.Encoded(t, again)) {
			t.Fatal("a state changed through write and read")
		}
	})
}

// FuzzBackupFile: a backup file for `berth master snapshot restore` gives
// an error or, only when whole and checksummed, the state it frames,
// never a panic.
func FuzzBackupFile(f *testing.F) {
	good := backupFile(f, snapshotOf(f, statetest.Filled()))
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Clone(good), 'x'))
	f.Add(backupFile(f, []byte("{}")))
	f.Add([]byte(`{"format":"berth-snapshot","version":1,"size":-1}` + "\n"))
	f.Add([]byte(`{"format":"berth-snapshot","version":1,"size":1000000000000}` + "\n{}"))
	f.Add([]byte("garbage without a line break"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &Store{dir: t.TempDir()}
		file, hdr, err := s.spoolBackup(bytes.NewReader(data))
		if file != nil {
			defer os.Remove(file.Name())
			defer file.Close()
		}
		if err != nil {
			return
		}
		state, err := io.ReadAll(file)
		if err != nil || int64(len(state)) != hdr.Size || !bytes.Contains(data, state) {
			t.Fatalf("accepted, but the spooled state is not the file's (%d bytes, header says %d): %v", len(state), hdr.Size, err)
		}
	})
}
