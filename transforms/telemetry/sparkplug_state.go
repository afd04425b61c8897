package telemetry

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mqttbeam/mqttbeam/internal/wire"
	"github.com/mqttbeam/mqttbeam/mqttio"
	"github.com/mqttbeam/mqttbeam/transforms/telemetry/sparkplug"
)

func init() {
	register.DoFn7x1[context.Context, state.Provider, string, mqttio.Message,
		func(beam.EventTime, Reading), func(beam.EventTime, DeadLetter), func(mqttio.Publication), error](&sparkplugFn{})
	register.Emitter1[mqttio.Publication]()
	register.Function1x2(encodeBirth)
	register.Function1x2(decodeBirth)
	beam.RegisterCoder(reflect.TypeOf((*spBirth)(nil)).Elem(), encodeBirth, decodeBirth)
}

// sparkplugFn applies each edge node's Sparkplug B messages, keyed by
// "group/edge_node", to the node's state (see ParseWithCommands).
type sparkplugFn struct {
	Cfg config
	// Birth is the node's NBIRTH and its devices' DBIRTHs.
	Birth state.Value[spBirth]
	// Seq is the seq the node's next message should have (-1: unknown).
	Seq state.Value[int64]
	// Rebirth is when the last rebirth request was made (Unix ms).
	Rebirth state.Value[int64]

	parser *Parser
	dec    *spDecoder
	// nodes caches the state of the bundle's keys: reading state is a
	// round trip to the runner, and a bundle owns its keys' state.
	nodes map[string]*spNode
	rs    []Reading
	ds    []DeadLetter
}

func (fn *sparkplugFn) Setup() (err error) {
	if fn.parser, err = newParser(fn.Cfg); err == nil {
		fn.dec = newSpDecoder(fn.parser)
	}
	return err
}

func (fn *sparkplugFn) StartBundle(_ context.Context, _ func(beam.EventTime, Reading), _ func(beam.EventTime, DeadLetter), _ func(mqttio.Publication)) {
	fn.nodes = map[string]*spNode{}
}

// node is the key's state, read once per bundle.
func (fn *sparkplugFn) node(sp state.Provider, key string) (*spNode, error) {
	if n, ok := fn.nodes[key]; ok {
		return n, nil
	}
	n := newSpNode()
	b, ok, err := fn.Birth.Read(sp)
	if err != nil {
		return nil, fmt.Errorf("telemetry: reading the Sparkplug B state of %s: %w", key, err)
	}
	if ok {
		n.birth = b
	}
	if seq, ok, err := fn.Seq.Read(sp); err != nil {
		return nil, fmt.Errorf("telemetry: reading the Sparkplug B seq of %s: %w", key, err)
	} else if ok {
		n.nextSeq = seq
	}
	if at, ok, err := fn.Rebirth.Read(sp); err != nil {
		return nil, fmt.Errorf("telemetry: reading the Sparkplug B rebirth time of %s: %w", key, err)
	} else if ok {
		n.rebirthAt = at
	}
	fn.nodes[key] = n
	return n, nil
}

func (fn *sparkplugFn) ProcessElement(ctx context.Context, sp state.Provider, key string, m mqttio.Message,
	emitReading func(beam.EventTime, Reading), emitDead func(beam.EventTime, DeadLetter), emitCommand func(mqttio.Publication)) error {
	n, err := fn.node(sp, key)
	if err != nil {
		return err
	}
	env, dl := fn.parser.envelope(m)
	var t sparkplug.Topic
	if dl == nil {
		t, dl = fn.parser.sparkplugTopic(&env)
	}
	if dl != nil { // parseFn checked this message
		emitDeadLetter(ctx, *dl, emitDead)
		return nil
	}
	var rebirth bool
	fn.rs, fn.ds, rebirth = fn.dec.apply(n, &env, t, fn.rs[:0], fn.ds[:0])
	emitAll(ctx, fn.rs, fn.ds, emitReading, emitDead)
	if rebirth && fn.Cfg.RebirthCooldown > 0 {
		at := env.received.UnixMilli()
		if n.rebirthAt == 0 || at-n.rebirthAt >= fn.Cfg.RebirthCooldown.Milliseconds() {
			n.rebirthAt = at
			n.dirty |= dirtyRebirth
			rebirthRequests.Inc(ctx, 1)
			_, node := n.ids(&fn.parser.ids, t)
			emitCommand(rebirthRequest(t, node, env.received))
		}
	}
	return fn.save(sp, key, n)
}

// save writes what changed of the node's state.
func (fn *sparkplugFn) save(sp state.Provider, key string, n *spNode) error {
	var err error
	if n.dirty&dirtyBirth != 0 {
		err = fn.Birth.Write(sp, n.birth)
	}
	if err == nil && n.dirty&dirtySeq != 0 {
		err = fn.Seq.Write(sp, n.nextSeq)
	}
	if err == nil && n.dirty&dirtyRebirth != 0 {
		err = fn.Rebirth.Write(sp, n.rebirthAt)
	}
	if err != nil {
		return fmt.Errorf("telemetry: writing the Sparkplug B state of %s: %w", key, err)
	}
	n.dirty = 0
	return nil
}

// RebirthRule is the "rule" Field of the rebirth requests of
// ParseWithCommands, which names them in the commands' audit.
const RebirthRule = "sparkplug_rebirth"

// rebirthRequest is the NCMD that asks the edge node of t to publish its
// BIRTHs again.
func rebirthRequest(t sparkplug.Topic, node string, at time.Time) mqttio.Publication {
	ncmd := sparkplug.Topic{Group: t.Group, Type: sparkplug.NCMD, EdgeNode: t.EdgeNode}
	return mqttio.Publication{
		Topic:   ncmd.String(),
		Fields:  map[string]string{"group_id": t.Group, "edge_node_id": t.EdgeNode, "device_id": node, "rule": RebirthRule},
		Payload: sparkplug.RebirthRequest(at),
	}
}

// spBirthCoderVersion starts every encoded spBirth, so that a format change
// is detected instead of misread.
const spBirthCoderVersion = 1

// encodeBirth is spBirth's Beam coder, for the state.
func encodeBirth(b spBirth) ([]byte, error) {
	out := []byte{spBirthCoderVersion, 0}
	if b.Born {
		out[1] = 1
	}
	out = wire.AppendVarint(out, b.BdSeq)
	out = wire.AppendUint64(out, b.Hash)
	out = appendMetrics(out, b.Node)
	out = wire.AppendUvarint(out, uint64(len(b.Devices)))
	for id, defs := range b.Devices {
		out = appendMetrics(wire.AppendString(out, id), defs)
	}
	return out, nil
}

func appendMetrics(b []byte, m spMetrics) []byte {
	b = wire.AppendUvarint(b, uint64(len(m.Aliases)))
	for alias, def := range m.Aliases {
		b = wire.AppendUvarint(wire.AppendString(wire.AppendUvarint(b, alias), def.Name), uint64(def.Type))
	}
	b = wire.AppendUvarint(b, uint64(len(m.Names)))
	for name, dt := range m.Names {
		b = wire.AppendUvarint(wire.AppendString(b, name), uint64(dt))
	}
	return b
}

// decodeBirth is the inverse of encodeBirth.
func decodeBirth(p []byte) (spBirth, error) {
	r := wire.NewReader(p)
	if v := r.Byte(); v != spBirthCoderVersion && r.Err() == nil {
		return spBirth{}, fmt.Errorf("telemetry: decoding Sparkplug B state: coder version %d, want %d", v, spBirthCoderVersion)
	}
	b := spBirth{Born: r.Byte() == 1, BdSeq: r.Varint(), Hash: r.Uint64()}
	b.Node = readMetrics(r)
	if n := r.Count(); n > 0 {
		b.Devices = make(map[string]spMetrics, n)
		for range n {
			id := r.String()
			b.Devices[id] = readMetrics(r)
		}
	}
	if err := r.Err(); err != nil {
		return spBirth{}, fmt.Errorf("telemetry: decoding Sparkplug B state: %w", err)
	}
	return b, nil
}

func readMetrics(r *wire.Reader) spMetrics {
	m := spMetrics{Aliases: map[uint64]spDef{}, Names: map[string]sparkplug.DataType{}}
	for range r.Count() {
		alias := r.Uvarint()
		name := r.String()
		m.Aliases[alias] = spDef{Name: name, Type: sparkplug.DataType(r.Uvarint())}
	}
	for range r.Count() {
		name := r.String()
		m.Names[name] = sparkplug.DataType(r.Uvarint())
	}
	return m
}
