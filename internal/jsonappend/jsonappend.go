// Package jsonappend appends JSON values to a byte slice exactly as
// encoding/json encodes them, without reflection: for the hand-written
// encoders of rows written by the million (transforms/rows), where
// encoding/json's reflection was a tenth of the telemetry job's CPU.
//
// Each function writes what json.Marshal writes for its Go value, byte for
// byte, and fails where json.Marshal fails (a non-finite float, a time
// outside years 0-9999).
package jsonappend

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// String appends s as a JSON string. Strings of printable ASCII without
// characters that encoding/json escapes are copied; others go through
// encoding/json (escapes, invalid UTF-8, U+2028).
func String(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s) // a string always encodes
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Float appends f as a JSON number, as encoding/json formats a float64:
// the shortest representation, in exponent form below 1e-6 and from 1e21.
func Float(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, 64))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Like encoding/json: e-07 becomes e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// Int appends i as a JSON number.
func Int(b []byte, i int64) []byte {
	return strconv.AppendInt(b, i, 10)
}

// Bool appends v as JSON true or false.
func Bool(b []byte, v bool) []byte {
	return strconv.AppendBool(b, v)
}

// Time appends t as time.Time's MarshalJSON does: an RFC 3339 string with
// nanoseconds as needed.
func Time(b []byte, t time.Time) ([]byte, error) {
	if _, offset := t.Zone(); offset%60 != 0 || t.Year() < 0 || t.Year() > 9999 {
		// MarshalJSON fails on these, or may: let it say how.
		enc, err := t.MarshalJSON()
		if err != nil {
			return b, err
		}
		return append(b, enc...), nil
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}
