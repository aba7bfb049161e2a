package schemas

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// excerptRunes is how much of the user's text a message quotes. Diagnostics
// are stored in Raft, served to read-only tokens and printed into CI logs:
// a value or a name is enough to find the place, a file's content is not.
const excerptRunes = 40

// Excerpt is how text from the user's files appears in a message: quoted
// with Go's escapes (no newline, control character or terminal escape gets
// through to a log or a CI annotation) and cut after 40 runes.
func Excerpt(s string) string {
	n, cut := 0, len(s)
	for i := range s { // by rune; invalid bytes count one each
		if n == excerptRunes {
			cut = i
			break
		}
		n++
	}
	if cut < len(s) {
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

// shown is s as it is when it is short and has nothing to escape (a name, a
// number, a path element), else its Excerpt.
func shown(s string) string {
	if s == "" || utf8.RuneCountInString(s) > excerptRunes || !utf8.ValidString(s) {
		return Excerpt(s)
	}
	for _, r := range s {
		if !unicode.IsGraphic(r) || r == '"' || r == '\\' || r == '`' {
			return Excerpt(s)
		}
	}
	return s
}

// shownArg renders an argument of a library's message (CUE's values) as
// shownLiteral does, whatever its type and verb.
type shownArg struct{ v any }

func (a shownArg) Format(f fmt.State, verb rune) {
	f.Write([]byte(shownLiteral(fmt.Sprintf(fmt.FormatString(f, verb), a.v))))
}

// shownLiteral is shown for text a library may have quoted already (CUE
// prints string values and labels as literals): a short literal stays as
// it is, a long one becomes the Excerpt of its value.
func shownLiteral(s string) string {
	if strings.HasPrefix(s, `"`) {
		if u, err := strconv.Unquote(s); err == nil {
			if utf8.RuneCountInString(u) <= excerptRunes {
				return s
			}
			return Excerpt(u)
		}
	}
	return shown(s)
}

// quoted matches what libraries quote in their messages: "Go-quoted",
// 'single-quoted' and `backquoted` fragments.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^'\n]*'|` + "`[^`]*`")

// libraryMessage makes a YAML or JSON parser's message safe to show: the
// fragments of the file it quotes become excerpts, and the rest is
// escaped and cut, for messages that quote without quotation marks.
func libraryMessage(msg string) string {
	msg = quoted.ReplaceAllStringFunc(msg, func(q string) string {
		inner := q[1 : len(q)-1]
		if shown(inner) == inner {
			return q
		}
		if q[0] == '"' {
			if u, err := strconv.Unquote(q); err == nil {
				inner = u
			}
		}
		return Excerpt(inner)
	})
	return clip(msg, maxLibraryMessageRunes)
}

// clip escapes what is not printable in msg and cuts it after limit runes.
func clip(msg string, limit int) string {
	var b strings.Builder
	n := 0
	for _, r := range msg {
		if n == limit {
			b.WriteString("...")
			break
		}
		n++
		if unicode.IsGraphic(r) {
			b.WriteRune(r)
		} else {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// maxLibraryMessageRunes bounds a library's message: its own words are
// short, so anything longer is quoting the file.
const maxLibraryMessageRunes = 160
