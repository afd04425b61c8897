package devicesim

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttbeam/mqttbeam/transforms/telemetry/sparkplug"
)

// Profiles of a fleet (Config.Profile).
const (
	// ProfileJSON is devices publishing JSON objects, the default.
	ProfileJSON = "json"
	// ProfileMixed adds, on one more connection, what a heterogeneous
	// plant has besides: a gateway publishing batches for the devices
	// behind it, plain-value meters, and a Sparkplug B edge node with two
	// devices (see MixedRoutes).
	ProfileMixed = "mixed"
)

// Route is a topic template and the payload format of its topics, as
// telemetry.Route takes them.
type Route struct {
	Template, Format string
}

// MixedRoutes are the topic templates and payload formats of the mixed
// profile's publishers besides the JSON devices (devices/{id}/telemetry):
//
//	gateways/gw-00/telemetry        batch: {"ts":..,"battery":..,"readings":[{"device_id":"gw-00-ble-0","ts":..,"temperature":..},...]}
//	devices/meter-0/values/power    value: 1234.5 (and .../running: true or false)
//	spBv1.0/sim/NBIRTH/edge-0, spBv1.0/sim/DBIRTH/edge-0/pump-1, .../DDATA/edge-0/pump-1 ...: Sparkplug B
//
// The edge node publishes its NBIRTH and DBIRTHs first, then DATA by alias
// with seq numbers; its MQTT will is its NDEATH, and it publishes its
// BIRTHs again when asked to (an NCMD "Node Control/Rebirth").
var MixedRoutes = []Route{
	{"gateways/{device_id}/telemetry", "batch"},
	{"devices/{device_id}/values/{metric}", "value"},
	{sparkplug.Namespace + "/#", "sparkplug_b"},
}

// The mixed profile's publishers.
const (
	gatewayID      = "gw-00"
	gatewayDevices = 3
	meters         = 2
	sparkplugGroup = "sim"
	edgeNodeID     = "edge-0"
)

var edgeDevices = []string{"pump-1", "pump-2"}

// MixedDeviceIDs are the device ids the mixed profile's extra publishers'
// readings have, with the telemetry job's default Sparkplug B device ids
// ({group_id}/{edge_node_id}/{device_id}).
func MixedDeviceIDs() []string {
	var ids []string
	ids = append(ids, gatewayID)
	for i := range gatewayDevices {
		ids = append(ids, gatewayChild(i))
	}
	for i := range meters {
		ids = append(ids, meterID(i))
	}
	ids = append(ids, sparkplugGroup+"/"+edgeNodeID)
	for _, d := range edgeDevices {
		ids = append(ids, sparkplugGroup+"/"+edgeNodeID+"/"+d)
	}
	return ids
}

func gatewayChild(i int) string { return fmt.Sprintf("%s-ble-%d", gatewayID, i) }
func meterID(i int) string      { return fmt.Sprintf("meter-%d", i) }

// mixedConnection is the connection of the mixed profile's publishers.
func mixedConnection(cfg *Config, stats *Stats) connection {
	node := newEdgeNode(stats)
	pubs := []publisher{newGateway(), node}
	for i := range meters {
		pubs = append(pubs, &meter{id: meterID(i), power: 1000 + 500*float64(i)})
	}
	will := node.death()
	return connection{id: cfg.Connections, publishers: pubs, will: &will, connected: node.subscribe}
}

// gateway publishes a batch of its BLE devices' readings a turn.
type gateway struct {
	temperatures [gatewayDevices]float64
}

func newGateway() *gateway {
	g := &gateway{}
	for i := range g.temperatures {
		g.temperatures[i] = 18 + float64(i)
	}
	return g
}

func (g *gateway) next(cfg *Config, rng *rand.Rand) []message {
	now := cfg.Now().UnixMilli()
	type element struct {
		DeviceID    string  `json:"device_id"`
		TS          int64   `json:"ts"`
		Temperature float64 `json:"temperature"`
		RSSI        int     `json:"rssi"`
	}
	batch := struct {
		TS       int64     `json:"ts"`
		Battery  float64   `json:"battery"`
		Readings []element `json:"readings"`
	}{TS: now, Battery: round(3.6+rng.Float64()*0.5, 3)}
	for i := range g.temperatures {
		g.temperatures[i] += rng.NormFloat64() * 0.1
		batch.Readings = append(batch.Readings, element{gatewayChild(i), now - int64(100*(gatewayDevices-i)),
			round(g.temperatures[i], 2), -60 - rng.IntN(30)})
	}
	b, err := json.Marshal(batch)
	if err != nil {
		panic(err) // numbers and strings always encode
	}
	return []message{{topic: "gateways/" + gatewayID + "/telemetry", payload: b}}
}

// meter publishes one plain value a turn: its power, or whether it runs.
type meter struct {
	id    string
	power float64
	turn  int
}

func (m *meter) next(_ *Config, rng *rand.Rand) []message {
	m.turn++
	if m.turn%4 == 0 {
		return []message{{topic: "devices/" + m.id + "/values/running", payload: fmt.Appendf(nil, "%t", m.power > 0)}}
	}
	m.power = math.Max(0, m.power+rng.NormFloat64()*20)
	return []message{{topic: "devices/" + m.id + "/values/power", payload: fmt.Appendf(nil, "%.1f", m.power)}}
}

// edgeNode is a Sparkplug B edge node with two devices (pumps).
type edgeNode struct {
	stats   *Stats
	bdSeq   uint64
	seq     uint64
	born    bool
	rebirth atomic.Bool // an NCMD asked for a rebirth
	turn    int
	uptime  uint64
	temps   []float64
}

// Aliases of the edge node's metrics: the node's, then each device's from
// deviceAliases(i).
const (
	aliasRebirth = 1
	aliasUptime  = 2
)

func deviceAliases(i int) (temperature, running, rpm uint64) {
	base := uint64(10 * (i + 1))
	return base, base + 1, base + 2
}

func newEdgeNode(stats *Stats) *edgeNode {
	return &edgeNode{stats: stats, temps: []float64{40, 55}}
}

func (e *edgeNode) topic(typ, device string) string {
	return sparkplug.Topic{Group: sparkplugGroup, Type: typ, EdgeNode: edgeNodeID, Device: device}.String()
}

// payload encodes a payload of the node's with the next seq (none for an
// NDEATH).
func (e *edgeNode) payload(cfg *Config, typ string, metrics ...sparkplug.Metric) []byte {
	p := sparkplug.Payload{Metrics: metrics}
	if cfg != nil {
		p.Timestamp = uint64(cfg.Now().UnixMilli())
	}
	if typ != sparkplug.NDEATH {
		p.Seq, p.HasSeq = e.seq, true
		e.seq = (e.seq + 1) % 256
	}
	return p.Marshal()
}

// death is the node's NDEATH, its MQTT will.
func (e *edgeNode) death() message {
	bd := sparkplug.Metric{Name: sparkplug.BdSeqMetric, DataType: sparkplug.Int64, Value: sparkplug.LongValue(e.bdSeq)}
	return message{topic: e.topic(sparkplug.NDEATH, ""), payload: e.payload(nil, sparkplug.NDEATH, bd)}
}

// subscribe listens for the node's commands: a rebirth request makes its
// next turn its BIRTHs.
func (e *edgeNode) subscribe(c paho.Client) error {
	tok := c.Subscribe(e.topic(sparkplug.NCMD, ""), 1, func(_ paho.Client, m paho.Message) {
		var p sparkplug.Payload
		if sparkplug.Decode(m.Payload(), &p) != nil {
			return
		}
		for _, mt := range p.Metrics {
			if v, ok := mt.Value.Number(sparkplug.Boolean); ok && mt.Name == sparkplug.RebirthMetric && v == 1 {
				e.rebirth.Store(true)
			}
		}
	})
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return fmt.Errorf("devicesim: subscribing to the edge node's commands: %v", tok.Error())
	}
	return nil
}

func (e *edgeNode) next(cfg *Config, rng *rand.Rand) []message {
	if !e.born || e.rebirth.Swap(false) {
		if e.born {
			e.stats.Rebirths.Add(1)
		}
		e.born = true
		return e.births(cfg)
	}
	e.turn++
	if e.turn%5 == 0 {
		e.uptime += 5
		return []message{{topic: e.topic(sparkplug.NDATA, ""), payload: e.payload(cfg, sparkplug.NDATA,
			sparkplug.Metric{Alias: aliasUptime, HasAlias: true, Value: sparkplug.LongValue(e.uptime)})}}
	}
	i := e.turn % len(edgeDevices)
	e.temps[i] += rng.NormFloat64() * 0.2
	temp, running, rpm := deviceAliases(i)
	return []message{{topic: e.topic(sparkplug.DDATA, edgeDevices[i]), payload: e.payload(cfg, sparkplug.DDATA,
		sparkplug.Metric{Alias: temp, HasAlias: true, Value: sparkplug.DoubleValue(round(e.temps[i], 2))},
		sparkplug.Metric{Alias: running, HasAlias: true, Value: sparkplug.BooleanValue(true)},
		sparkplug.Metric{Alias: rpm, HasAlias: true, Value: sparkplug.IntValue(int64(1450 + rng.IntN(100)))})}}
}

// births are the node's NBIRTH (seq 0) and its devices' DBIRTHs.
func (e *edgeNode) births(cfg *Config) []message {
	e.seq = 0
	msgs := []message{{topic: e.topic(sparkplug.NBIRTH, ""), payload: e.payload(cfg, sparkplug.NBIRTH,
		sparkplug.Metric{Name: sparkplug.BdSeqMetric, DataType: sparkplug.Int64, Value: sparkplug.LongValue(e.bdSeq)},
		sparkplug.Metric{Name: sparkplug.RebirthMetric, Alias: aliasRebirth, HasAlias: true, DataType: sparkplug.Boolean, Value: sparkplug.BooleanValue(false)},
		sparkplug.Metric{Name: "uptime", Alias: aliasUptime, HasAlias: true, DataType: sparkplug.UInt64, Value: sparkplug.LongValue(e.uptime)},
		sparkplug.Metric{Name: "Properties/Firmware", DataType: sparkplug.String, Value: sparkplug.StringValue("sim-1.0")})}}
	for i, d := range edgeDevices {
		temp, running, rpm := deviceAliases(i)
		msgs = append(msgs, message{topic: e.topic(sparkplug.DBIRTH, d), payload: e.payload(cfg, sparkplug.DBIRTH,
			sparkplug.Metric{Name: "temperature", Alias: temp, HasAlias: true, DataType: sparkplug.Double, Value: sparkplug.DoubleValue(round(e.temps[i], 2))},
			sparkplug.Metric{Name: "running", Alias: running, HasAlias: true, DataType: sparkplug.Boolean, Value: sparkplug.BooleanValue(true)},
			sparkplug.Metric{Name: "rpm", Alias: rpm, HasAlias: true, DataType: sparkplug.Int32, Value: sparkplug.IntValue(1500)},
			sparkplug.Metric{Name: "model", DataType: sparkplug.String, Value: sparkplug.StringValue("px-" + d)})})
	}
	return msgs
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
