package share

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// Armor markers of the text block that carries messages through files,
// pipes and e-mail.
const (
	ArmorBegin = "-----BEGIN COMMONS MESSAGES-----"
	ArmorEnd   = "-----END COMMONS MESSAGES-----"
	armorWidth = 76
)

// Armor writes msgs (wire forms) as one text block: the begin line, each
// message as standard base64 wrapped at 76 columns followed by a blank
// line, and the end line.
func Armor(w io.Writer, msgs [][]byte) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, ArmorBegin)
	for _, m := range msgs {
		s := base64.StdEncoding.EncodeToString(m)
		for len(s) > armorWidth {
			fmt.Fprintln(bw, s[:armorWidth])
			s = s[armorWidth:]
		}
		fmt.Fprintln(bw, s)
		fmt.Fprintln(bw)
	}
	fmt.Fprintln(bw, ArmorEnd)
	return bw.Flush()
}

// Dearmor reads one armored block from r and returns the wire forms of its
// messages, unparsed (check each with Open). Text before the begin line is
// skipped (a mail's headers); spaces, tabs, '\r' and a leading '>' quote
// marker on a line are ignored. At most maxMsgs messages are read.
func Dearmor(r io.Reader, maxMsgs int) ([][]byte, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64*1024)
	line := 0
	begun := false
	var out [][]byte
	var cur strings.Builder
	start := 0
	flush := func() error {
		if cur.Len() == 0 {
			return nil
		}
		if cur.Len() > base64.StdEncoding.EncodedLen(MaxMessageSize) {
			return reject(ErrOversized, "message block at line %d: %d characters, more than a message can be", start, cur.Len())
		}
		b, err := base64.StdEncoding.DecodeString(cur.String())
		if err != nil {
			return reject(ErrTruncated, "message block at line %d: bad base64 (%v): the block was damaged, export it again", start, err)
		}
		if len(out) >= maxMsgs {
			return reject(ErrOversized, "more than %d messages in the block", maxMsgs)
		}
		out = append(out, b)
		cur.Reset()
		return nil
	}
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		for strings.HasPrefix(t, ">") {
			t = strings.TrimSpace(t[1:])
		}
		if !begun {
			if t == ArmorBegin {
				begun = true
			}
			continue
		}
		switch {
		case t == ArmorEnd:
			if err := flush(); err != nil {
				return nil, err
			}
			return out, nil
		case t == "":
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			if cur.Len() == 0 {
				start = line
			}
			cur.WriteString(strings.ReplaceAll(t, " ", ""))
			if cur.Len() > base64.StdEncoding.EncodedLen(MaxMessageSize) {
				return nil, reject(ErrOversized, "message block at line %d: longer than a message can be (missing blank line between messages?)", start)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read message block: line %d: %w", line+1, err)
	}
	if !begun {
		return nil, reject(ErrTruncated, "no %q line found: not a commons message block", ArmorBegin)
	}
	return nil, reject(ErrTruncated, "message block ends at line %d without %q: truncated, export it again", line, ArmorEnd)
}
