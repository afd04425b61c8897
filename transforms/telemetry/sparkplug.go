package telemetry

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mqttbeam/mqttbeam/transforms/telemetry/sparkplug"
)

// OnlineMetric is the metric that Sparkplug B BIRTHs (1) and DEATHs (0) add
// to their readings, so that the aggregates show when an edge node or a
// device was offline (a BIRTH metric of the same name wins).
const OnlineMetric = "online"

// spNode is what Parse keeps of one Sparkplug B edge node between its
// messages: in Beam state (ParseWithCommands), or in a Parser's memory.
type spNode struct {
	birth spBirth
	// nextSeq is the seq the next message should have; -1 before the
	// first NBIRTH.
	nextSeq int64
	// rebirthAt is when the last rebirth request was made (Unix
	// milliseconds of a receive time); 0 for never.
	rebirthAt int64
	// dirty says which of the three changed, for the Beam state.
	dirty uint8
	// nodeID and deviceIDs cache the SparkplugDeviceID ids of the node and
	// of its devices, by topic device id (not state).
	nodeID    string
	deviceIDs map[string]string
}

// ids are the device id of topic t's device (or, for the node's own
// messages, the node's) and the node's id, made once per node and device.
func (n *spNode) ids(tmpl *idTemplate, t sparkplug.Topic) (device, node string) {
	if n.nodeID == "" {
		_, n.nodeID = tmpl.ids(t)
	}
	if !t.IsDevice() {
		return n.nodeID, n.nodeID
	}
	id, ok := n.deviceIDs[t.Device]
	if !ok {
		if n.deviceIDs == nil {
			n.deviceIDs = map[string]string{}
		}
		id, _ = tmpl.ids(t)
		n.deviceIDs[t.Device] = id
	}
	return id, n.nodeID
}

// Which parts of an spNode changed.
const (
	dirtyBirth = 1 << iota
	dirtySeq
	dirtyRebirth
)

func newSpNode() *spNode { return &spNode{birth: spBirth{BdSeq: -1}, nextSeq: -1} }

// spBirth is an edge node's current NBIRTH and its devices' DBIRTHs.
type spBirth struct {
	Born bool
	// BdSeq is the NBIRTH's bdSeq metric; -1 when it had none.
	BdSeq int64
	// Hash is the NBIRTH payload's hash, to tell a redelivered NBIRTH
	// from a new one.
	Hash    uint64
	Node    spMetrics
	Devices map[string]spMetrics
}

// spMetrics are the metrics a BIRTH defined.
type spMetrics struct {
	Aliases map[uint64]spDef
	// Names holds the datatype of every metric, also those without alias.
	Names map[string]sparkplug.DataType
}

// spDef is a metric a BIRTH defined.
type spDef struct {
	Name string
	Type sparkplug.DataType
}

// nodeKey is the state key of a topic's edge node: "group/edge_node".
func nodeKey(t sparkplug.Topic) string { return t.Group + "/" + t.EdgeNode }

// sparkplugTopic parses the topic of a message a sparkplug_b template
// matched.
func (p *Parser) sparkplugTopic(env *envelope) (sparkplug.Topic, *DeadLetter) {
	t, err := sparkplug.ParseTopic(env.m.Topic)
	if err != nil {
		return t, p.dead(env, ReasonNoDeviceID, "%v (template %q)", err, env.route.text)
	}
	return t, nil
}

// spDecoder turns Sparkplug B messages into readings, given their edge
// node's state. It reuses its scratch space: one per goroutine.
type spDecoder struct {
	p       *Parser
	payload sparkplug.Payload
}

func newSpDecoder(p *Parser) *spDecoder { return &spDecoder{p: p} }

// spMessage is one message being applied to its edge node's state.
type spMessage struct {
	env          *envelope
	topic        sparkplug.Topic
	device, node string // ids (SparkplugDeviceID)
	rs           []Reading
	ds           []DeadLetter
	rebirth      bool // the node's state is unknown or broken: ask for a rebirth
}

func (m *spMessage) dead(p *Parser, payload bool, reason, format string, args ...any) {
	dl := p.dead(m.env, reason, format, args...)
	if !payload {
		dl.Payload = nil
	}
	m.ds = append(m.ds, *dl)
}

// apply applies the message env of edge node n (topic t, a telemetry
// message type) to n, and appends its readings and dead letters. rebirth
// says whether the node's state is unknown or broken, so that a rebirth
// should be requested.
func (d *spDecoder) apply(n *spNode, env *envelope, t sparkplug.Topic, rs []Reading, ds []DeadLetter) ([]Reading, []DeadLetter, bool) {
	m := spMessage{env: env, topic: t, rs: rs, ds: ds}
	m.device, m.node = n.ids(&d.p.ids, t)
	d.applyMessage(n, &m)
	env.addUserProperties(m.rs[len(rs):])
	return m.rs, m.ds, m.rebirth
}

func (d *spDecoder) applyMessage(n *spNode, m *spMessage) {
	p, t := d.p, m.topic
	if err := sparkplug.Decode(m.env.m.Payload, &d.payload); err != nil {
		m.dead(p, true, ReasonNotProtobuf, "%s payload is not a Sparkplug B protobuf: %v", t.Type, err)
		return
	}
	pl := &d.payload
	if pl.Seq > 255 {
		m.dead(p, true, ReasonBadSparkplug, "%s has seq %d; Sparkplug B seq numbers are 0-255", t.Type, pl.Seq)
		return
	}
	switch t.Type {
	case sparkplug.NBIRTH:
		d.nbirth(n, m, pl)
		return
	case sparkplug.NDEATH:
		d.ndeath(n, m, pl)
		return
	}
	if !n.birth.Born {
		m.dead(p, true, ReasonNoBirth, "%s of edge node %s/%s, whose NBIRTH has not been seen (or it died since)", t.Type, t.Group, t.EdgeNode)
		m.rebirth = true
		return
	}
	current := d.checkSeq(n, m, pl.Seq)
	var defs spMetrics
	if t.IsDevice() && t.Type != sparkplug.DBIRTH {
		var ok bool
		if defs, ok = n.birth.Devices[t.Device]; !ok {
			m.dead(p, true, ReasonNoBirth, "%s of device %s of edge node %s/%s, whose DBIRTH has not been seen since the node's NBIRTH (or it died since)", t.Type, t.Device, t.Group, t.EdgeNode)
			m.rebirth = m.rebirth || t.Type == sparkplug.DDATA
			return
		}
	} else if !t.IsDevice() {
		defs = n.birth.Node
	}
	switch t.Type {
	case sparkplug.DBIRTH:
		birth, detail := birthDefs(pl)
		if detail != "" {
			m.dead(p, true, ReasonBadSparkplug, "DBIRTH: %s", detail)
			return
		}
		if d.readings(m, pl, &birth, true) && current {
			if n.birth.Devices == nil {
				n.birth.Devices = map[string]spMetrics{}
			}
			n.birth.Devices[t.Device] = birth
			n.dirty |= dirtyBirth
		}
	case sparkplug.DDEATH:
		if d.death(m, pl, []string{m.device}) && current {
			delete(n.birth.Devices, t.Device)
			n.dirty |= dirtyBirth
		}
	default: // NDATA, DDATA
		d.readings(m, pl, &defs, false)
	}
}

// checkSeq checks a message's seq against the node's and says whether the
// message is current (not a redelivered or reordered older one). A gap is
// reported, and the message is decoded after it.
func (d *spDecoder) checkSeq(n *spNode, m *spMessage, seq uint64) bool {
	want := uint64(n.nextSeq)
	switch ahead := (seq - want) & 255; {
	case ahead == 0:
	case ahead < 128:
		m.dead(d.p, false, ReasonSeqGap, "%s of edge node %s/%s has seq %d, expected %d: %d messages missing (they were not received; this message is decoded)",
			m.topic.Type, m.topic.Group, m.topic.EdgeNode, seq, want, ahead)
		m.rebirth = true
	default:
		// Behind: a redelivery, or a message older than one already
		// seen. Its values are readings; it changes no state.
		return false
	}
	n.nextSeq = int64((seq + 1) & 255)
	n.dirty |= dirtySeq
	return true
}

func (d *spDecoder) nbirth(n *spNode, m *spMessage, pl *sparkplug.Payload) {
	birth, detail := birthDefs(pl)
	if detail != "" {
		m.dead(d.p, true, ReasonBadSparkplug, "NBIRTH: %s", detail)
		return
	}
	h := hash(m.env.m.Payload)
	if !d.readings(m, pl, &birth, true) {
		return
	}
	if n.birth.Born && n.birth.Hash == h {
		return // redelivered: the state is this birth's
	}
	n.birth = spBirth{Born: true, BdSeq: bdSeqOf(pl), Hash: h, Node: birth}
	n.nextSeq = int64((pl.Seq + 1) & 255)
	n.dirty |= dirtyBirth | dirtySeq
}

func (d *spDecoder) ndeath(n *spNode, m *spMessage, pl *sparkplug.Payload) {
	bd := bdSeqOf(pl)
	if n.birth.Born && bd >= 0 && n.birth.BdSeq >= 0 && bd != n.birth.BdSeq {
		m.dead(d.p, true, ReasonStaleDeath, "NDEATH of edge node %s/%s has bdSeq %d, its current NBIRTH %d: the will of an earlier session, ignored",
			m.topic.Group, m.topic.EdgeNode, bd, n.birth.BdSeq)
		return
	}
	// An NDEATH is the will the broker published when the node's
	// connection died: its timestamp is when the node connected.
	pl.Timestamp = 0
	offline := []string{m.device}
	for _, dev := range slices.Sorted(maps.Keys(n.birth.Devices)) {
		id, _ := n.ids(&d.p.ids, sparkplug.Topic{Group: m.topic.Group, Type: sparkplug.DDEATH, EdgeNode: m.topic.EdgeNode, Device: dev})
		offline = append(offline, id)
	}
	d.death(m, pl, offline)
	n.birth, n.nextSeq, n.dirty = spBirth{BdSeq: -1}, -1, n.dirty|dirtyBirth|dirtySeq
}

// death appends an OnlineMetric 0 reading for each device id, at the
// payload's time; it returns false when the message is a dead letter.
func (d *spDecoder) death(m *spMessage, pl *sparkplug.Payload, devices []string) bool {
	at, source, ok := d.payloadTime(m, pl)
	if !ok {
		return false
	}
	for _, id := range devices {
		r := d.baseReading(m)
		r.DeviceID, r.EventTime, r.TimeSource = id, at, source
		r.Attributes = nil
		if id != m.node {
			r.Attributes = map[string]string{AttrGateway: m.node}
		}
		r.Metrics = map[string]float64{OnlineMetric: 0}
		m.rs = append(m.rs, r)
	}
	return true
}

// bdSeqOf is the payload's bdSeq metric, or -1.
func bdSeqOf(pl *sparkplug.Payload) int64 {
	for i := range pl.Metrics {
		if mt := &pl.Metrics[i]; mt.Name == sparkplug.BdSeqMetric {
			if v, ok := mt.Value.Number(sparkplug.UInt64); ok && v >= 0 && v <= math.MaxInt32 {
				return int64(v)
			}
		}
	}
	return -1
}

// birthDefs are the metrics a BIRTH defines, or a Detail of why it is
// malformed.
func birthDefs(pl *sparkplug.Payload) (spMetrics, string) {
	defs := spMetrics{Aliases: map[uint64]spDef{}, Names: make(map[string]sparkplug.DataType, len(pl.Metrics))}
	for i := range pl.Metrics {
		mt := &pl.Metrics[i]
		if mt.Name == "" {
			return defs, fmt.Sprintf("metric %d has no name (a BIRTH names every metric)", i)
		}
		dt := typeOf(mt)
		if mt.HasAlias {
			if prev, dup := defs.Aliases[mt.Alias]; dup && prev.Name != mt.Name {
				return defs, fmt.Sprintf("alias %d is given to both %q and %q", mt.Alias, prev.Name, mt.Name)
			}
			defs.Aliases[mt.Alias] = spDef{mt.Name, dt}
		}
		defs.Names[mt.Name] = dt
	}
	return defs, ""
}

// typeOf is a metric's datatype, from the value's field when the metric
// does not say (lenient with edge nodes that leave BIRTH datatypes out).
func typeOf(mt *sparkplug.Metric) sparkplug.DataType {
	if mt.DataType != sparkplug.Unknown {
		return mt.DataType
	}
	switch mt.Value.Kind {
	case sparkplug.KindInt:
		return sparkplug.Int32
	case sparkplug.KindLong:
		return sparkplug.Int64
	case sparkplug.KindFloat:
		return sparkplug.Float
	case sparkplug.KindDouble:
		return sparkplug.Double
	case sparkplug.KindBoolean:
		return sparkplug.Boolean
	case sparkplug.KindString:
		return sparkplug.String
	}
	return sparkplug.Unknown
}

func (d *spDecoder) baseReading(m *spMessage) Reading {
	r := m.env.reading()
	r.DeviceID, r.Kind = m.device, m.topic.Type
	r.PayloadHash = hash(m.env.m.Payload)
	if m.topic.IsDevice() {
		r.Attributes = map[string]string{AttrGateway: m.node}
	}
	return r
}

// payloadTime is the payload's time, or the receive time when it has none;
// ok is false (and a dead letter made) when it is out of bounds.
func (d *spDecoder) payloadTime(m *spMessage, pl *sparkplug.Payload) (time.Time, string, bool) {
	if pl.Timestamp == 0 {
		return m.env.received, TimeFromReceived, true
	}
	t, ok := d.eventTime(m, pl.Timestamp, "payload")
	return t, TimeFromPayload, ok
}

func (d *spDecoder) eventTime(m *spMessage, ms uint64, what string) (time.Time, bool) {
	earliest, latest := d.p.bounds(m.env.received)
	if ms < uint64(earliest.UnixMilli()) || ms > uint64(latest.UnixMilli()) {
		m.dead(d.p, true, ReasonBadTimestamp, "%s timestamp %d is outside %s .. %s (before EarliestEventTime, or more than MaxClockSkew after the receive time; Sparkplug B times are epoch milliseconds)",
			what, ms, earliest.Format(time.RFC3339), latest.Format(time.RFC3339))
		return time.Time{}, false
	}
	return time.UnixMilli(int64(ms)).UTC(), true
}

// readings appends the readings of a BIRTH's or DATA's metrics, one for
// each distinct timestamp, resolving names and datatypes from defs (for a
// BIRTH, its own). It returns false when the message is a dead letter.
func (d *spDecoder) readings(m *spMessage, pl *sparkplug.Payload, defs *spMetrics, birth bool) bool {
	p, start := d.p, len(m.rs)
	payloadAt, payloadSource, ok := d.payloadTime(m, pl)
	if !ok {
		return false
	}
	var unsupported, nonFinite []string
	discard := func() bool { m.rs = m.rs[:start]; return false }
	for i := range pl.Metrics {
		mt := &pl.Metrics[i]
		name, dt := mt.Name, mt.DataType
		switch {
		case birth:
			dt = typeOf(mt)
		case mt.HasAlias:
			def, ok := defs.Aliases[mt.Alias]
			if !ok {
				m.dead(p, true, ReasonUnknownAlias, "%s metric %d has alias %d, which the BIRTH of %s did not define", m.topic.Type, i, mt.Alias, m.device)
				m.rebirth = true
				return discard()
			}
			if name == "" {
				name = def.Name
			}
			if dt == sparkplug.Unknown {
				dt = def.Type
			}
		case name == "":
			m.dead(p, true, ReasonBadSparkplug, "%s metric %d has neither a name nor an alias", m.topic.Type, i)
			return discard()
		case dt == sparkplug.Unknown:
			if dt, ok = defs.Names[name]; !ok {
				if dt = typeOf(mt); dt == sparkplug.Unknown {
					m.dead(p, true, ReasonUnknownAlias, "%s metric %q has no datatype and the BIRTH of %s did not define it", m.topic.Type, name, m.device)
					m.rebirth = true
					return discard()
				}
			}
		}
		if mt.IsNull || name == sparkplug.BdSeqMetric || strings.HasPrefix(name, sparkplug.ControlPrefix) {
			continue
		}
		at, source := payloadAt, payloadSource
		if mt.Timestamp != 0 {
			if at, ok = d.eventTime(m, mt.Timestamp, fmt.Sprintf("metric %q", name)); !ok {
				return discard()
			}
			source = TimeFromPayload
		}
		switch {
		case dt == sparkplug.DateTime || dt.IsText():
			var s string
			switch {
			case dt.IsText() && mt.Value.Kind == sparkplug.KindString:
				s = string(mt.Value.Raw)
			case dt == sparkplug.DateTime && (mt.Value.Kind == sparkplug.KindLong || mt.Value.Kind == sparkplug.KindInt) && mt.Value.Bits <= math.MaxInt64:
				s = time.UnixMilli(int64(mt.Value.Bits)).UTC().Format(time.RFC3339Nano)
			default:
				m.dead(p, true, ReasonWrongType, "%s metric %q is a %v but its value is in %v", m.topic.Type, name, dt, mt.Value.Kind)
				return discard()
			}
			r := d.readingAt(m, start, at, source)
			if r.Attributes == nil {
				r.Attributes = map[string]string{}
			}
			r.Attributes[name] = s
		case dt.IsNumeric():
			v, ok := mt.Value.Number(dt)
			if !ok {
				m.dead(p, true, ReasonWrongType, "%s metric %q is a %v but its value is in %v", m.topic.Type, name, dt, mt.Value.Kind)
				return discard()
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				nonFinite = append(nonFinite, name)
				continue
			}
			r := d.readingAt(m, start, at, source)
			if r.Metrics == nil {
				r.Metrics = make(map[string]float64, len(pl.Metrics))
			}
			r.Metrics[name] = v
		default:
			unsupported = append(unsupported, fmt.Sprintf("%q (%v)", name, dt))
		}
	}
	if birth {
		r := d.readingAt(m, start, payloadAt, payloadSource)
		if _, ok := r.Metrics[OnlineMetric]; !ok {
			if r.Metrics == nil {
				r.Metrics = map[string]float64{}
			}
			r.Metrics[OnlineMetric] = 1
		}
	}
	if len(unsupported) > 0 {
		m.dead(p, true, ReasonUnsupportedType, "%s metrics of datatypes that are not turned into readings: %s (its other metrics are readings)", m.topic.Type, strings.Join(unsupported, ", "))
	}
	if len(nonFinite) > 0 {
		m.dead(p, true, ReasonNonFinite, "%s metrics with NaN or infinite values: %q (its other metrics are readings)", m.topic.Type, nonFinite)
	}
	return true
}

// readingAt returns the message's reading at the time at, appending it
// when it has none yet.
func (d *spDecoder) readingAt(m *spMessage, start int, at time.Time, source string) *Reading {
	for i := start; i < len(m.rs); i++ {
		if m.rs[i].EventTime.Equal(at) {
			return &m.rs[i]
		}
	}
	r := d.baseReading(m)
	r.EventTime, r.TimeSource = at, source
	m.rs = append(m.rs, r)
	return &m.rs[len(m.rs)-1]
}
