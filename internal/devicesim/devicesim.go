// Package devicesim simulates a fleet of devices publishing telemetry to an
// MQTT broker, for the local demo and the benchmarks.
//
// Each device publishes JSON readings to devices/{id}/telemetry:
//
//	{"ts":1767268800000,"temperature":21.3,"humidity":40.2,"battery":3.71,"status":"ok"}
//
// The mixed profile (ProfileMixed) adds a gateway publishing batches for
// the devices behind it, plain-value meters and a Sparkplug B edge node
// with two devices (see MixedRoutes).
//
// A few devices run hot (their temperature climbs above 80, so the sample
// rules fire), a configurable share of messages is malformed (to show the dead
// letters) and a share is late (its timestamp lies in the past, to show late
// panes). The devices share a few MQTT connections rather than one each, so a
// fleet of ten thousand costs the broker a handful of clients.
package devicesim

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Config describes a simulated fleet.
type Config struct {
	// Broker is the broker's URL, e.g. tcp://127.0.0.1:1883.
	Broker string
	// Devices is the number of devices (default 10).
	Devices int
	// Rate is messages per second per device; 0 publishes as fast as the
	// broker takes them.
	Rate float64
	// MalformedShare and LateShare are the shares of messages (0 to 1) that
	// are malformed, or stamped Late in the past.
	MalformedShare float64
	LateShare      float64
	// Late is how far in the past a late message's timestamp is (default 90s).
	Late time.Duration
	// HotShare is the share of devices that run hot (default 0.05).
	HotShare float64
	// QoS is the publish QoS (0 or 1).
	QoS byte
	// Connections is the number of MQTT connections the devices share
	// (default min(Devices, 4)).
	Connections int
	// MaxMessages stops the fleet after this many messages (0: no limit),
	// shared evenly by the connections and by the devices of each.
	MaxMessages int64
	// Profile is ProfileJSON (the default) or ProfileMixed, which adds a
	// connection with a gateway, meters and a Sparkplug B edge node.
	Profile string
	// Seed makes the simulation repeatable.
	Seed uint64
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Stats counts what a fleet published, and the rebirths the Sparkplug B
// edge node was asked for and made.
type Stats struct {
	Published, Malformed, Late, Rebirths atomic.Int64
}

// DeviceID is the id of the i-th simulated device.
func DeviceID(i int) string {
	return fmt.Sprintf("sim-%05d", i)
}

func (c *Config) defaults() error {
	if c.Broker == "" {
		return errors.New("devicesim: Broker is empty")
	}
	if c.Devices == 0 {
		c.Devices = 10
	}
	if c.Late == 0 {
		c.Late = 90 * time.Second
	}
	if c.HotShare == 0 {
		c.HotShare = 0.05
	}
	if c.Connections == 0 {
		c.Connections = min(c.Devices, 4)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Profile == "" {
		c.Profile = ProfileJSON
	}
	switch {
	case c.Profile != ProfileJSON && c.Profile != ProfileMixed:
		return fmt.Errorf("devicesim: Profile %q is not %q or %q", c.Profile, ProfileJSON, ProfileMixed)
	case c.Devices < 0:
		return fmt.Errorf("devicesim: Devices %d is negative", c.Devices)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("devicesim: Rate %v is not a non-negative number", c.Rate)
	case c.MalformedShare < 0 || c.MalformedShare > 1:
		return fmt.Errorf("devicesim: MalformedShare %v is not between 0 and 1", c.MalformedShare)
	case c.LateShare < 0 || c.LateShare > 1:
		return fmt.Errorf("devicesim: LateShare %v is not between 0 and 1", c.LateShare)
	case c.QoS > 1:
		return fmt.Errorf("devicesim: QoS %d is not 0 or 1", c.QoS)
	case c.Connections < 1 || c.Connections > c.Devices:
		return fmt.Errorf("devicesim: Connections %d is not between 1 and Devices (%d)", c.Connections, c.Devices)
	}
	return nil
}

// Run publishes until ctx is done or MaxMessages have been published, and
// returns the first publish or connection error. stats, when not nil, is
// updated as messages go out.
func Run(ctx context.Context, cfg Config, stats *Stats) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	if stats == nil {
		stats = &Stats{}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for c := range cfg.Connections {
		wg.Go(func() {
			if err := runConnection(ctx, &cfg, c, stats); err != nil {
				cancel(err)
			}
		})
	}
	if cfg.Profile == ProfileMixed {
		wg.Go(func() {
			if err := publish(ctx, &cfg, mixedConnection(&cfg, stats), stats); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// budget is connection c's share of MaxMessages (-1: no limit). Shares are
// fixed up front, so every connection (and so every device) publishes its
// share however the connections are scheduled.
func (c *Config) budget(conn int) int64 {
	if c.MaxMessages <= 0 {
		return -1
	}
	n := int64(c.Connections)
	if c.Profile == ProfileMixed {
		n++ // the mixed publishers' connection
	}
	share := c.MaxMessages / n
	if int64(conn) < c.MaxMessages%n {
		share++
	}
	return share
}

// runConnection publishes for the devices c, c+Connections, c+2*Connections...
func runConnection(ctx context.Context, cfg *Config, c int, stats *Stats) error {
	var devices []publisher
	for i := c; i < cfg.Devices; i += cfg.Connections {
		devices = append(devices, newDevice(cfg, i))
	}
	return publish(ctx, cfg, connection{id: c, publishers: devices}, stats)
}

// connection is one MQTT connection's publishers, and what it sets up.
type connection struct {
	id         int
	publishers []publisher
	// will, when set, is the connection's MQTT will; connected runs once
	// the connection is up.
	will      *message
	connected func(paho.Client) error
}

// publish connects and publishes for c's publishers in turn, at cfg.Rate
// each, until ctx is done or the connection's budget is spent.
func publish(ctx context.Context, cfg *Config, c connection, stats *Stats) error {
	opts := paho.NewClientOptions().AddBroker(cfg.Broker).
		SetClientID(fmt.Sprintf("devicesim-%d-%d", os.Getpid(), c.id)).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second).
		SetMaxResumePubInFlight(1000)
	if c.will != nil {
		opts.SetBinaryWill(c.will.topic, c.will.payload, 1, false)
	}
	client := paho.NewClient(opts)
	if tok := client.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return fmt.Errorf("devicesim: connecting to %s: %v", cfg.Broker, tok.Error())
	}
	defer client.Disconnect(250)
	if c.connected != nil {
		if err := c.connected(client); err != nil {
			return err
		}
	}

	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(c.id)))
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / (cfg.Rate * float64(len(c.publishers))))
	}
	const window = 256 // QoS 1 publishes in flight per connection
	pending := make([]paho.Token, 0, window)
	flush := func() error {
		for _, tok := range pending {
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				return fmt.Errorf("devicesim: publish: %v", tok.Error())
			}
		}
		pending = pending[:0]
		return nil
	}
	budget := cfg.budget(c.id)
	next := time.Now()
	for n, turn := int64(0), 0; ; turn++ {
		if ctx.Err() != nil || n == budget {
			return flush()
		}
		if interval > 0 {
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				if err := flush(); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(d):
				}
			}
		}
		msgs := c.publishers[turn%len(c.publishers)].next(cfg, rng)
		if budget >= 0 {
			msgs = msgs[:min(int64(len(msgs)), budget-n)]
		}
		for _, m := range msgs {
			pending = append(pending, client.Publish(m.topic, cfg.QoS, false, m.payload))
			n++
			stats.Published.Add(1)
			switch m.kind {
			case kindMalformed:
				stats.Malformed.Add(1)
			case kindLate:
				stats.Late.Add(1)
			}
			if len(pending) == window {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
}

// publisher is a simulated device (or gateway): next is what it publishes
// on its turn.
type publisher interface {
	next(cfg *Config, rng *rand.Rand) []message
}

// message is one MQTT message to publish.
type message struct {
	topic   string
	payload []byte
	kind    kind
}

type kind int

const (
	kindOK kind = iota
	kindMalformed
	kindLate
)

// device is one simulated device's state: a temperature that drifts.
type device struct {
	id          string
	topic       string
	temperature float64
	hot         bool
}

func newDevice(cfg *Config, i int) *device {
	hot := cfg.HotShare > 0 && i%int(math.Max(1, math.Round(1/cfg.HotShare))) == 0
	return &device{id: DeviceID(i), topic: "devices/" + DeviceID(i) + "/telemetry", temperature: 20 + float64(i%10), hot: hot}
}

var malformed = [][]byte{
	[]byte(`not json`),
	[]byte(`[1,2,3]`),
	[]byte(`{"ts":"yesterday","temperature":21}`),
	[]byte(`{"ts":1767268800000,"status":"no metrics here"}`),
}

func (d *device) next(cfg *Config, rng *rand.Rand) []message {
	r := rng.Float64()
	if r < cfg.MalformedShare {
		return []message{{d.topic, malformed[rng.IntN(len(malformed))], kindMalformed}}
	}
	now, k := cfg.Now(), kindOK
	if r < cfg.MalformedShare+cfg.LateShare {
		now, k = now.Add(-cfg.Late), kindLate
	}
	if d.hot {
		d.temperature = min(d.temperature+0.5, 95)
	} else {
		d.temperature += rng.NormFloat64() * 0.1
	}
	b, err := json.Marshal(map[string]any{
		"ts":          now.UnixMilli(),
		"temperature": math.Round(d.temperature*100) / 100,
		"humidity":    math.Round((40+rng.Float64()*20)*100) / 100,
		"battery":     math.Round((3.5+rng.Float64()*0.7)*1000) / 1000,
		"status":      "ok",
	})
	if err != nil {
		panic(err) // a map of numbers and strings always encodes
	}
	return []message{{d.topic, b, k}}
}

// sites, models and owners fill the simulated registry.
var (
	sites  = []string{"berlin", "lyon", "austin", "osaka"}
	models = []string{"tx-100", "tx-200", "hx-9"}
	owners = []string{"facilities", "production", "research"}
)

// WriteRegistry writes a JSON-lines device registry of the first n simulated
// devices and of the extra ids (e.g. MixedDeviceIDs) to path: device_id,
// site, model and owner. One device in ten is left out, so the demo shows
// unknown devices too.
func WriteRegistry(path string, n int, extra ...string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("devicesim: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("devicesim: %w", err)
	}
	enc := json.NewEncoder(f)
	ids := make([]string, n, n+len(extra))
	for i := range n {
		ids[i] = DeviceID(i)
	}
	for i, id := range append(ids, extra...) {
		if i < n && i%10 == 9 {
			continue
		}
		rec := map[string]string{"device_id": id, "site": sites[i%len(sites)], "model": models[i%len(models)], "owner": owners[i%len(owners)]}
		if err := enc.Encode(rec); err != nil {
			f.Close()
			return fmt.Errorf("devicesim: writing %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("devicesim: writing %s: %w", path, err)
	}
	return nil
}

//go:embed sample/rules.json
var sampleRules []byte

// SampleRules is a JSON rule set (rules.ParseJSON) that fires for the fleet's
// hot devices and low batteries, for the demo.
func SampleRules() []byte {
	return slices.Clone(sampleRules)
}
