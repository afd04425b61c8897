package mqttio

import (
	"fmt"
	"strconv"
)

// reasonNames are the MQTT 5 reason codes of refusals (0x80 and above) and
// the informative ones below 0x80 that mqttio reports, named as the
// specification names them (section 2.4).
var reasonNames = map[byte]string{
	0x10: "no matching subscribers",
	0x11: "no subscription existed",
	0x80: "unspecified error",
	0x81: "malformed packet",
	0x82: "protocol error",
	0x83: "implementation specific error",
	0x84: "unsupported protocol version",
	0x85: "client identifier not valid",
	0x86: "bad user name or password",
	0x87: "not authorized",
	0x88: "server unavailable",
	0x89: "server busy",
	0x8A: "banned",
	0x8B: "server shutting down",
	0x8C: "bad authentication method",
	0x8D: "keep alive timeout",
	0x8E: "session taken over",
	0x8F: "topic filter invalid",
	0x90: "topic name invalid",
	0x91: "packet identifier in use",
	0x92: "packet identifier not found",
	0x93: "receive maximum exceeded",
	0x94: "topic alias invalid",
	0x95: "packet too large",
	0x96: "message rate too high",
	0x97: "quota exceeded",
	0x98: "administrative action",
	0x99: "payload format invalid",
	0x9A: "retain not supported",
	0x9B: "QoS not supported",
	0x9C: "use another server",
	0x9D: "server moved",
	0x9E: "shared subscriptions not supported",
	0x9F: "connection rate exceeded",
	0xA0: "maximum connect time",
	0xA1: "subscription identifiers not supported",
	0xA2: "wildcard subscriptions not supported",
}

// reasonText describes a reason code and the broker's reason string, if it
// gave one: `not authorized (0x87: "ACL denied")`.
func reasonText(code byte, reasonString string) string {
	name, ok := reasonNames[code]
	if !ok {
		name = "reason code"
	}
	hex := "0x" + strconv.FormatUint(uint64(code)|0x100, 16)[1:]
	if reasonString != "" {
		return fmt.Sprintf("%s (%s: %q)", name, hex, reasonString)
	}
	return fmt.Sprintf("%s (%s)", name, hex)
}

// refusedError is a publish the broker refused with an MQTT 5 reason code
// in its PUBACK or PUBREC, or one that was not sent (unsent) because the
// limits the broker announced in its CONNACK do not allow it. Retrying
// would not help: Write sends the publication to its error output with the
// reason.
type refusedError struct {
	code         byte
	reasonString string
	unsent       bool
}

func (e *refusedError) Error() string {
	if e.unsent {
		return "not published, the broker would refuse it: " + reasonText(e.code, e.reasonString)
	}
	return "broker refused the publish: " + reasonText(e.code, e.reasonString)
}
