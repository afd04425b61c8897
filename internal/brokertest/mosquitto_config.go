package brokertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// moreConfig collects the settings of MosquittoSettings and MosquittoACL.
type moreConfig struct {
	settings []string
	acl      []string
	aclFile  string
}

// MosquittoSettings adds global configuration lines, such as
// "max_keepalive 10" or "max_packet_size 2000" (see mosquitto.conf(5)).
func MosquittoSettings(lines ...string) MosquittoOption {
	return func(cfg *mosquittoConfig) error {
		for _, l := range lines {
			if l == "" || strings.ContainsAny(l, "\r\n") || strings.HasPrefix(l, "listener") {
				return fmt.Errorf("MosquittoSettings(%q): one setting per line, and no listener", l)
			}
		}
		cfg.more.settings = append(cfg.more.settings, lines...)
		return nil
	}
}

// MosquittoACL restricts the topics clients may use with an acl_file of
// these lines, such as "topic read readonly/#" or "pattern readwrite
// open/#" (see mosquitto.conf(5)). mosquitto 2.0.11 refuses a publish to a
// topic the ACL does not allow with reason 0x87 (not authorized) for MQTT 5
// clients, but grants every subscription (it filters what it delivers).
// Give MosquittoMaxQueued too: with max_queued_messages 0 (this package's
// default) mosquitto 2.0.11 drops the connection of a client right after it
// refused one of its QoS 1 publishes ("Bad socket read/write").
func MosquittoACL(lines ...string) MosquittoOption {
	return func(cfg *mosquittoConfig) error {
		if len(lines) == 0 {
			return fmt.Errorf("MosquittoACL: no lines")
		}
		for _, l := range lines {
			if strings.ContainsAny(l, "\r\n") {
				return fmt.Errorf("MosquittoACL(%q): one rule per line", l)
			}
		}
		cfg.more.acl = lines
		return nil
	}
}

// writeFiles writes the files the settings need into dir.
func (c *moreConfig) writeFiles(dir string) error {
	if len(c.acl) == 0 {
		return nil
	}
	c.aclFile = filepath.Join(dir, "acl")
	if err := os.WriteFile(c.aclFile, []byte(strings.Join(c.acl, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("write mosquitto ACL: %w", err)
	}
	return nil
}

// write adds the settings to the configuration.
func (c *moreConfig) write(conf *strings.Builder) {
	for _, l := range c.settings {
		conf.WriteString(l + "\n")
	}
	if c.aclFile != "" {
		fmt.Fprintf(conf, "acl_file %s\n", c.aclFile)
	}
}

// AwaitLog waits until mosquitto's log has a line containing text, failing
// t after Timeout. Tests use it for what mosquitto only reports in its log,
// such as "Expiring client ID due to timeout".
func (m *MosquittoBroker) AwaitLog(t testing.TB, text string) {
	t.Helper()
	deadline := time.After(Timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(m.d.logs.String(), text) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("brokertest: mosquitto logged no %q within %v", text, Timeout)
		}
	}
}
