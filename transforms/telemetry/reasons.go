package telemetry

// Reason codes of a DeadLetter.
const (
	// ReasonNoDeviceID: the topic matches none of the topic templates (the
	// TopicTemplate and the Routes), or its device id level is empty, or it
	// is not a Sparkplug B topic where a sparkplug_b template matched.
	ReasonNoDeviceID = "no_device_id"
	// ReasonBadDeviceID: the device id contains '+', '#' or NUL (or, when
	// it comes from the payload, '/'), or a batch element's device id is
	// not a string or an integer, so it could not be used as a topic level
	// (e.g. to send the device commands).
	ReasonBadDeviceID = "bad_device_id"
	// ReasonInvalidUTF8: the topic or the payload is not valid UTF-8.
	ReasonInvalidUTF8 = "invalid_utf8"
	// ReasonTooLarge: the payload is larger than MaxPayloadBytes, or a
	// batch has more than MaxBatch elements.
	ReasonTooLarge = "too_large"
	// ReasonNotJSON: the payload is empty, is not JSON, or has data after
	// the JSON value.
	ReasonNotJSON = "not_json"
	// ReasonNotObject: the payload (json) or a batch element is JSON but
	// not an object.
	ReasonNotObject = "not_object"
	// ReasonBadTimestamp: the timestamp field is neither an RFC 3339 string
	// nor a number of epoch milliseconds, or is before EarliestEventTime or
	// more than MaxClockSkew after the receive time (for Sparkplug B, a
	// payload or metric timestamp out of those bounds).
	ReasonBadTimestamp = "bad_timestamp"
	// ReasonNonFinite: a metric does not fit a float64 (e.g. 1e999, which
	// would be +Inf); for Sparkplug B, a NaN or infinite float value (the
	// message's other metrics are readings).
	ReasonNonFinite = "non_finite"
	// ReasonNoMetrics: the object has no number besides the timestamp, or a
	// batch has no elements.
	ReasonNoMetrics = "no_metrics"
	// ReasonTooDeep: the JSON object nests objects or arrays deeper than
	// MaxDepth.
	ReasonTooDeep = "too_deep"
	// ReasonTooManyMetrics: the payload has more than MaxMetrics metrics
	// (e.g. a long array of numbers, flattened).
	ReasonTooManyMetrics = "too_many_metrics"
	// ReasonNotBatch: a batch payload is neither a JSON array nor an object
	// whose BatchField is an array.
	ReasonNotBatch = "not_batch"
	// ReasonNotLineProtocol: an influx payload's line is not InfluxDB line
	// protocol (measurement[,tag=value...] field=value[,...] [timestamp]),
	// or the payload has no line.
	ReasonNotLineProtocol = "not_line_protocol"
	// ReasonNotNumber: a value payload is not a JSON number, true or false.
	ReasonNotNumber = "not_number"
	// ReasonNoMetricName: a value payload's topic has an empty metric
	// level.
	ReasonNoMetricName = "no_metric_name"
	// ReasonNotProtobuf: a Sparkplug B payload is not a valid protobuf
	// encoding (truncated, malformed, a field of the wrong wire type).
	ReasonNotProtobuf = "not_protobuf"
	// ReasonBadSparkplug: a Sparkplug B payload breaks the specification's
	// rules: no seq where one is required, a BIRTH metric without a name or
	// with an alias used twice.
	ReasonBadSparkplug = "bad_sparkplug"
	// ReasonWrongType: a Sparkplug B metric's value is not in the field its
	// datatype uses (e.g. a Double in string_value).
	ReasonWrongType = "wrong_type"
	// ReasonUnknownAlias: a Sparkplug B DATA metric's alias (or name,
	// without a datatype) is not one its BIRTH defined.
	ReasonUnknownAlias = "unknown_alias"
	// ReasonNoBirth: a Sparkplug B message of an edge node or device whose
	// BIRTH has not been seen (a DATA before its BIRTH, or after its
	// DEATH).
	ReasonNoBirth = "no_birth"
	// ReasonSeqGap: Sparkplug B sequence numbers skipped messages. The
	// dead letter reports the gap (its Payload is empty: the missing
	// messages never came); the message after the gap is decoded.
	ReasonSeqGap = "seq_gap"
	// ReasonUnsupportedType: Sparkplug B metrics of a datatype telemetry
	// does not turn into readings (DataSet, Template, Bytes, File,
	// PropertySet, arrays). The dead letter holds the whole payload and
	// names the metrics; the message's other metrics are readings.
	ReasonUnsupportedType = "unsupported_type"
	// ReasonStaleDeath: a Sparkplug B NDEATH whose bdSeq is not the current
	// NBIRTH's: the will of an earlier session, which changes nothing.
	ReasonStaleDeath = "stale_death"
)

// Reasons lists every reason code.
var Reasons = []string{
	ReasonInvalidUTF8, ReasonNoDeviceID, ReasonBadDeviceID, ReasonTooLarge,
	ReasonNotJSON, ReasonNotObject, ReasonBadTimestamp, ReasonNonFinite,
	ReasonNoMetrics, ReasonTooDeep, ReasonTooManyMetrics, ReasonNotBatch,
	ReasonNotLineProtocol, ReasonNotNumber, ReasonNoMetricName, ReasonNotProtobuf, ReasonBadSparkplug,
	ReasonWrongType, ReasonUnknownAlias, ReasonNoBirth, ReasonSeqGap,
	ReasonUnsupportedType, ReasonStaleDeath,
}
