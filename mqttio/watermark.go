package mqttio

import "github.com/mqttbeam/mqttbeam/internal/streamread"

// watermarkEstimator holds a reader's watermark. The reader advances it by
// hand: to each emitted message's event time minus MaxOutOfOrderness, and to
// the current time minus that bound while idle, in whole WatermarkSteps (see
// streamread.WatermarkEstimator, which is safe for the runner to read while
// the reader advances it).
type watermarkEstimator = streamread.WatermarkEstimator
