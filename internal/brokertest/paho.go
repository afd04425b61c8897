package brokertest

import (
	"errors"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Timeout bounds every blocking step of this package's paho helpers.
const Timeout = 10 * time.Second

// ClientOptions returns paho options for a client id connecting to url once:
// no automatic reconnects or connect retries, and a bounded connect timeout.
func ClientOptions(url, id string) *paho.ClientOptions {
	return paho.NewClientOptions().
		AddBroker(url).
		SetClientID(id).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(Timeout)
}

// TryConnect connects a client built from opts and returns it with the
// connect error, for tests that expect a connection to be refused.
func TryConnect(opts *paho.ClientOptions) (paho.Client, error) {
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(Timeout) {
		return nil, errors.New("brokertest: connect timed out")
	}
	return c, tok.Error()
}

// Connect connects a client built from opts, failing t if it cannot, and
// disconnects it when the test ends.
func Connect(t testing.TB, opts *paho.ClientOptions) paho.Client {
	t.Helper()
	c, err := TryConnect(opts)
	if err != nil {
		t.Fatalf("brokertest: connect to %v: %v", opts.Servers, err)
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// Await waits for tok and fails t if it times out or completes with an error.
func Await(t testing.TB, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(Timeout) {
		t.Fatal("brokertest: paho token timed out")
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("brokertest: %v", err)
	}
}

// Inbox buffers the messages passed to its Handle method.
type Inbox chan paho.Message

// NewInbox returns an Inbox that buffers up to size messages before Handle
// blocks (and with it the paho client).
func NewInbox(size int) Inbox { return make(Inbox, size) }

// Handle is a paho.MessageHandler that keeps m in the inbox.
func (in Inbox) Handle(_ paho.Client, m paho.Message) { in <- m }

// Next returns the next n messages, failing t if they do not all arrive
// within Timeout.
func (in Inbox) Next(t testing.TB, n int) []paho.Message {
	t.Helper()
	return next(t, in, n, Payloads)
}

// next receives n messages from in, failing t with the payloads received
// so far if they do not all arrive within Timeout.
func next[M any](t testing.TB, in chan M, n int, payloads func([]M) []string) []M {
	t.Helper()
	got := make([]M, 0, n)
	timeout := time.NewTimer(Timeout)
	defer timeout.Stop()
	for len(got) < n {
		select {
		case m := <-in:
			got = append(got, m)
		case <-timeout.C:
			t.Fatalf("brokertest: received %d of %d messages: %q", len(got), n, payloads(got))
		}
	}
	return got
}

// Payloads returns the payloads of msgs as strings.
func Payloads(msgs []paho.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Payload())
	}
	return out
}
