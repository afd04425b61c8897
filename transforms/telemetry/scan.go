package telemetry

import (
	"encoding/json"
	"strings"
)

// Kinds of a payload's top-level values, as walkObject reports them.
const (
	valueString = iota // s is the string, unescaped
	valueNumber        // raw is the number's JSON text
	valueBool          // s is "true" or "false"
	valueOther         // s names the JSON type: "null", "object" or "array"
)

// visitFunc receives one member of a JSON object.
type visitFunc func(key string, kind int, s string, raw []byte)

// walkObject calls visit for each member of the JSON object b, in order,
// duplicate keys included. b must be valid JSON (json.Valid) whose first
// byte other than white space is '{'. It decodes only the top level, without
// building the values of nested objects and arrays, and allocates only the
// keys and string values (escaped ones through encoding/json, so that they
// decode exactly as encoding/json decodes them).
func walkObject(b []byte, visit visitFunc) {
	i := skipSpace(b, 0) + 1 // past '{'
	for i < len(b) {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		end := endOfString(b, i)
		key := unquote(b[i:end])
		i = skipSpace(b, end) + 1 // past ':'
		i = skipSpace(b, i)
		if i >= len(b) {
			return
		}
		switch b[i] {
		case '"':
			end = endOfString(b, i)
			visit(key, valueString, unquote(b[i:end]), nil)
		case '{':
			end = endOfComposite(b, i)
			visit(key, valueOther, "object", nil)
		case '[':
			end = endOfComposite(b, i)
			visit(key, valueOther, "array", nil)
		case 't':
			end = min(i+len("true"), len(b))
			visit(key, valueBool, "true", nil)
		case 'f':
			end = min(i+len("false"), len(b))
			visit(key, valueBool, "false", nil)
		case 'n':
			end = min(i+len("null"), len(b))
			visit(key, valueOther, "null", nil)
		default:
			end = endOfNumber(b, i)
			visit(key, valueNumber, "", b[i:end])
		}
		i = end
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the index after the string that starts at b[i] ('"').
func endOfString(b []byte, i int) int {
	for j := i + 1; j < len(b); {
		switch b[j] {
		case '\\':
			j += 2
		case '"':
			return j + 1
		default:
			j++
		}
	}
	return len(b)
}

// endOfComposite returns the index after the object or array at b[i].
func endOfComposite(b []byte, i int) int {
	depth := 0
	for j := i; j < len(b); {
		switch b[j] {
		case '"':
			j = endOfString(b, j)
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		}
		j++
	}
	return len(b)
}

func endOfNumber(b []byte, i int) int {
	for i < len(b) && strings.IndexByte("+-.0123456789eE", b[i]) >= 0 {
		i++
	}
	return i
}

// unquote decodes the JSON string literal q.
func unquote(q []byte) string {
	if len(q) < 2 {
		return ""
	}
	inner := q[1 : len(q)-1]
	for _, c := range inner {
		if c == '\\' {
			var s string
			_ = json.Unmarshal(q, &s) // q is valid JSON
			return s
		}
	}
	return string(inner)
}

// firstType names the JSON type of the valid JSON value b from its first
// byte.
func firstType(b []byte) string {
	i := skipSpace(b, 0)
	if i >= len(b) {
		return "nothing"
	}
	switch b[i] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}
