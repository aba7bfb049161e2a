package api

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// TestFrames: frames round-trip; a frame over MaxFrame is refused on both
// ends, a reader never allocates what a hostile length says, and a cut
// frame is an error, not a short payload.
func TestFrames(t *testing.T) {
	var b bytes.Buffer
	var mu sync.Mutex
	big := bytes.Repeat([]byte("x"), 2*MaxFrame+10)
	fw := &FrameWriter{Mu: &mu, W: &b, Ch: ChanStdout}
	if n, err := fw.Write(big); n != len(big) || err != nil {
		t.Fatalf("FrameWriter: %d %v", n, err)
	}
	if err := WriteFrame(&b, ChanStdin, nil); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, MaxFrame)
	var got []byte
	sizes := []int{}
	for {
		ch, p, err := ReadFrame(&b, buf)
		if err != nil {
			t.Fatal(err)
		}
		if ch == ChanStdin {
			if len(p) != 0 {
				t.Errorf("EOF frame with %d bytes", len(p))
			}
			break
		}
		got = append(got, p...)
		sizes = append(sizes, len(p))
	}
	if !bytes.Equal(got, big) || !reflect.DeepEqual(sizes, []int{MaxFrame, MaxFrame, 10}) {
		t.Errorf("read back %d bytes in frames of %v", len(got), sizes)
	}
	if _, _, err := ReadFrame(&b, buf); err != io.EOF {
		t.Errorf("at the end: %v, want EOF", err)
	}

	if err := WriteFrame(io.Discard, ChanStdout, make([]byte, MaxFrame+1)); err == nil {
		t.Error("wrote a frame over MaxFrame")
	}
	hostile := []byte{ChanStdin, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hostile[1:], 0xffffffff)
	if _, _, err := ReadFrame(bytes.NewReader(hostile), buf); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("a 4 GiB frame: %v, want refused", err)
	}
	cut := []byte{ChanStdout, 0, 0, 0, 10, 'a', 'b'}
	if _, _, err := ReadFrame(bytes.NewReader(cut), buf); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a cut frame: %v, want ErrUnexpectedEOF", err)
	}
	if _, _, err := ReadFrame(bytes.NewReader(cut[:3]), buf); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a cut header: %v, want ErrUnexpectedEOF", err)
	}
}

// TestExecOptions: what the client encodes, masters and agents parse back;
// everything else is refused with a reason.
func TestExecOptions(t *testing.T) {
	o := ExecOptions{Container: "web", Command: []string{"sh", "-c", "echo a&b=c; exit 3", ""}, Stdin: true, TTY: true}
	back, err := ParseExecOptions(o.Query().Encode())
	if err != nil || !reflect.DeepEqual(back, o) {
		t.Errorf("round trip: %+v %v, want %+v", back, err, o)
	}
	for q, want := range map[string]string{
		"":                                   "no command",
		"command=":                           "no command",
		"command=ls&container=Web":           "container name",
		"command=ls&container=a&container=b": "give container once",
		"command=ls&stdin=yes":               "stdin: want true or false",
		"command=ls&follow=true":             `unknown parameter "follow"`,
		"command=ls&%zz":                     "malformed",
		"command=" + strings.Repeat("a", maxExecBytes+1): "bytes",
		strings.Repeat("command=a&", maxExecArgs+1):      "arguments",
	} {
		if _, err := ParseExecOptions(q); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.60q: %v, want an error with %q", q, err, want)
		}
	}
	for _, p := range []string{"0", "65536", "-1", "http", "", "80 "} {
		if _, err := ParsePort(p); err == nil {
			t.Errorf("port %q accepted", p)
		}
	}
}

// FuzzExecOptions: whatever query a client sends, the options parsed from
// it are within bounds and survive being sent on to the node unchanged.
func FuzzExecOptions(f *testing.F) {
	for _, q := range []string{"command=ls", "container=web&command=sh&command=-c&command=echo+a&stdin=true&tty=1",
		"command=a&command=&command=%00", "command=ls&stdin=false&tty=F", "command=" + strings.Repeat("%FF", 50)} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		o, err := ParseExecOptions(raw)
		if err != nil {
			return
		}
		total := 0
		for _, a := range o.Command {
			total += len(a)
		}
		if len(o.Command) == 0 || len(o.Command) > maxExecArgs || total > maxExecBytes {
			t.Fatalf("%q: parsed a command out of bounds: %d arguments, %d bytes", raw, len(o.Command), total)
		}
		back, err := ParseExecOptions(o.Query().Encode())
		if err != nil || !reflect.DeepEqual(back, o) {
			t.Fatalf("%q: %+v does not survive its own encoding: %+v %v", raw, o, back, err)
		}
	})
}
