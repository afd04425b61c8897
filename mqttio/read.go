package mqttio

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/mqttbeam/mqttbeam/internal/streamread"
)

func init() {
	register.DoFn4x2[context.Context, *sdf.LockRTracker, []byte, func(beam.EventTime, Message), sdf.ProcessContinuation, error](&readFn{})
	register.Emitter2[beam.EventTime, Message]()
	beam.RegisterType(reflect.TypeOf((*watermarkEstimator)(nil)).Elem())
}

// Beam metrics of Read, in namespace "mqttio".
var (
	messagesRead  = beam.NewCounter("mqttio", "messages_read")
	bytesRead     = beam.NewCounter("mqttio", "bytes_read")
	redeliveries  = beam.NewCounter("mqttio", "redeliveries")
	acksSent      = beam.NewCounter("mqttio", "acks")
	reconnects    = beam.NewCounter("mqttio", "reconnects")
	connectErrors = beam.NewCounter("mqttio", "connect_errors")
	payloadSize   = beam.NewDistribution("mqttio", "payload_bytes")
)

// Read subscribes to the topic filters on the brokers and returns an
// unbounded PCollection<Message>, one element per MQTT message, timestamped
// with its receive time (or the time the EventTime option extracts).
//
// brokers are URLs of one cluster (tcp://, mqtt://, ssl://, tls://, mqtts://,
// ws://, wss://), tried in order when connecting; filters may use the '+' and
// '#' wildcards. Options configure QoS (default 1), parallel readers, client
// id, security, event time and bounded reads; see ReadOption and Option.
// Read panics when the arguments or options are invalid; TryRead returns the
// error instead.
func Read(s beam.Scope, brokers, filters []string, opts ...ReadOption) beam.PCollection {
	out, err := TryRead(s, brokers, filters, opts...)
	if err != nil {
		panic(err)
	}
	return out
}

// TryRead is Read returning an error instead of panicking.
func TryRead(s beam.Scope, brokers, filters []string, opts ...ReadOption) (beam.PCollection, error) {
	fn, err := newReadFn(brokers, filters, opts)
	if err != nil {
		return beam.PCollection{}, err
	}
	s = s.Scope("mqttio.Read")
	out, err := beam.TryParDo(s, fn, beam.Impulse(s))
	if err != nil {
		return beam.PCollection{}, fmt.Errorf("mqttio.Read: %w", err)
	}
	return out[0], nil
}

// readFn is the splittable DoFn behind Read. Its element is the impulse; its
// initial restriction is split into one restriction per reader.
type readFn struct {
	Brokers []string
	Filters []string
	Cfg     readConfig

	eventTime func(Message) (time.Time, bool)
	spec      string
	// we is the watermark estimator the runner created for the restriction
	// being processed (see CreateWatermarkEstimator). It stays nil on the
	// direct runner, which runs splittable DoFns without estimators.
	we *watermarkEstimator
}

func newReadFn(brokers, filters []string, opts []ReadOption) (*readFn, error) {
	cfg, err := newReadConfig(opts)
	if err != nil {
		return nil, err
	}
	bs, err := parseBrokers(brokers)
	if err != nil {
		return nil, err
	}
	if len(filters) == 0 {
		return nil, errors.New("mqttio: no topic filter given")
	}
	for _, f := range filters {
		if err := ValidateFilter(f); err != nil {
			return nil, fmt.Errorf("mqttio: topic filter: %w", err)
		}
	}
	if cfg.ClientID == "" {
		sum := sha256.Sum256([]byte(strings.Join(filters, "\x00") + "\x01" + cfg.Group))
		cfg.ClientID = "mqttbeam-" + hex.EncodeToString(sum[:4])
	}
	if cfg.Group == "" {
		cfg.Group = cfg.ClientID
	}
	if cfg.Readers > 1 {
		if err := checkTopicLevel(cfg.Group); err != nil {
			return nil, fmt.Errorf("mqttio: shared-subscription group (SharedGroup, or the client id): %w", err)
		}
	}
	if _, err := cfg.eventTimeFunc(); err != nil {
		return nil, err
	}
	return &readFn{Brokers: bs, Filters: slices.Clone(filters), Cfg: cfg}, nil
}

// Setup prepares what does not travel with the DoFn.
func (fn *readFn) Setup() error {
	et, err := fn.Cfg.eventTimeFunc()
	if err != nil {
		return err
	}
	fn.eventTime = et
	spec, err := json.Marshal(fn)
	if err != nil {
		return fmt.Errorf("mqttio: fingerprinting the read: %w", err)
	}
	fn.spec = string(spec)
	return nil
}

// subscriptions maps each filter to its subscription: a shared one when
// there is more than one reader.
func (fn *readFn) subscriptions() map[string]byte {
	subs := make(map[string]byte, len(fn.Filters))
	for _, f := range fn.Filters {
		if fn.Cfg.Readers > 1 && !strings.HasPrefix(f, "$share/") {
			f = "$share/" + fn.Cfg.Group + "/" + f
		}
		subs[f] = fn.Cfg.QoS
	}
	return subs
}

// CreateInitialRestriction starts at offset 0, bounded by the options.
func (fn *readFn) CreateInitialRestriction(_ []byte) restriction {
	return fn.Cfg.InitialRestriction()
}

// SplitRestriction gives each reader its own restriction and client id.
func (fn *readFn) SplitRestriction(_ []byte, r restriction) []restriction {
	if r.ClientID != "" {
		return []restriction{r}
	}
	rs := make([]restriction, fn.Cfg.Readers)
	for i := range rs {
		rs[i] = r
		rs[i].ClientID = fmt.Sprintf("%s-%d", fn.Cfg.ClientID, i)
	}
	return rs
}

// RestrictionSize is the backlog of the reader on this worker, and at least
// 1: an unbounded reader always has work ahead (a size of 0 would read as
// "nothing to do" to a runner).
func (fn *readFn) RestrictionSize(_ []byte, r restriction) float64 {
	return float64(max(backlog(r.ClientID, r.Start-1), 1))
}

func (fn *readFn) CreateTracker(r restriction) *sdf.LockRTracker {
	return sdf.NewLockRTracker(streamread.NewTracker(r, func(claimed int64) int64 {
		return backlog(r.ClientID, claimed)
	}))
}

// TruncateRestriction ends the read when the pipeline drains.
func (fn *readFn) TruncateRestriction(rt *sdf.LockRTracker, _ []byte) restriction {
	r := rt.GetRestriction().(restriction)
	r.End = r.Start
	return r
}

func (fn *readFn) InitialWatermarkEstimatorState(et beam.EventTime, _ restriction, _ []byte) int64 {
	return int64(et)
}

// CreateWatermarkEstimator creates the estimator for the restriction about to
// be processed and keeps it for ProcessElement, which advances it by hand.
func (fn *readFn) CreateWatermarkEstimator(state int64) *watermarkEstimator {
	fn.we = streamread.NewWatermarkEstimator(state, fn.Cfg.WatermarkStep)
	return fn.we
}

func (fn *readFn) WatermarkEstimatorState(we *watermarkEstimator) int64 {
	return we.State()
}

// ProcessElement runs one reader for one bundle: it acknowledges what earlier
// bundles committed, re-emits what a failed bundle had emitted, and emits new
// messages until it is time to checkpoint.
func (fn *readFn) ProcessElement(ctx context.Context, rt *sdf.LockRTracker, _ []byte, emit func(beam.EventTime, Message)) (sdf.ProcessContinuation, error) {
	we := fn.we
	fn.we = nil
	r := rt.GetRestriction().(restriction)
	t := rt.Rt.(*tracker)
	b := &bundle{fn: fn, ctx: ctx, rt: rt, t: t, r: r, we: we, emit: emit, started: time.Now()}
	if we == nil {
		return b.runToEnd()
	}
	return b.run()
}

// ReaderState is what one reader of a Read running in this process is
// doing (LocalReaders).
type ReaderState struct {
	// ClientID is the reader's client id.
	ClientID string
	// Connected reports whether the reader is connected now.
	Connected bool
	// Err, when not connected, is why: the last failed connection
	// attempt's error or, after a connection was lost, what ended it.
	Err error
	// Watermark is how far the reader's watermark had come at the end of
	// its last bundle, before it is rounded down to a WatermarkStep (zero
	// before the first bundle): a window whose end is on the step grid
	// closes once it passes the window's end.
	Watermark time.Time
}

// LocalReaders returns the state of every Read's readers that run in this
// process, by client id. Only local runners (prism, the direct runner) run
// the readers in the launching process, so that it can print their state
// while the job runs; it reads the per-worker session cache the readers
// keep anyway. On Dataflow, the connect_errors and reconnects metrics and
// the workers' logs tell the same.
func LocalReaders() []ReaderState {
	all := sessions.All()
	out := make([]ReaderState, len(all))
	for i, s := range all {
		out[i] = s.state()
	}
	slices.SortFunc(out, func(a, b ReaderState) int { return strings.Compare(a.ClientID, b.ClientID) })
	return out
}

// Drain makes every Read running in this process end as a bounded read ends
// at its limit: it stops taking messages, waits until the runner has
// committed what it emitted, acknowledges it and returns, so the pipeline
// finishes and its final windows fire. It is meant for local runs (prism, the
// direct runner), where the pipeline runs in the caller's process, e.g. on
// Ctrl-C. Reads started afterwards in the same process end at once. It also
// ends the registry refresh of enrich.Join, the other unbounded source of the
// project's pipelines.
func Drain() {
	streamread.RequestDrain()
}
