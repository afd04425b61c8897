package streamread

import (
	"time"

	"github.com/mqttbeam/mqttbeam/internal/optcheck"
)

// Settings are the options every streaming reader of the project takes:
// how many readers, when a bounded read stops, how the watermark moves, and
// how much a reader buffers and emits per bundle. Each reader package embeds
// them in its configuration and exposes each setter below as an option of
// its own, documented for its source; the checks and defaults live here
// only. The fields travel inside the readers' DoFns, so they are exported.
type Settings struct {
	Readers           int
	MaxRecords        int64
	MaxReadTime       time.Duration
	MaxOutOfOrderness time.Duration
	IdleWatermark     time.Duration
	WatermarkStep     time.Duration
	MaxBuffered       int
	MaxBundleSize     int
	MaxBundleTime     time.Duration
}

// DefaultSettings are the settings of a reader given no option: one reader,
// unbounded, a watermark on the newest event time moving in steps of a
// second and advancing after a second without messages, 1000 messages
// buffered, bundles of at most 10000 messages or 500ms.
func DefaultSettings() Settings {
	return Settings{
		Readers:       1,
		IdleWatermark: time.Second,
		WatermarkStep: time.Second,
		MaxBuffered:   1000,
		MaxBundleSize: 10000,
		MaxBundleTime: 500 * time.Millisecond,
	}
}

// InitialRestriction is the restriction a read with these settings starts
// from (see Unbounded).
func (s *Settings) InitialRestriction() Restriction {
	return Unbounded(s.MaxRecords, s.MaxReadTime)
}

// SetReaders is the Readers option: between 1 and 1000.
func (s *Settings) SetReaders(n int) error {
	return inRange("Readers", n, 1, 1000, &s.Readers)
}

// SetMaxRecords is the MaxRecords option: at least 1.
func (s *Settings) SetMaxRecords(n int64) error {
	return inRange("MaxRecords", n, 1, 1<<62, &s.MaxRecords)
}

// SetMaxReadTime is the MaxReadTime option: positive.
func (s *Settings) SetMaxReadTime(d time.Duration) error {
	return positive("MaxReadTime", d, &s.MaxReadTime)
}

// SetMaxOutOfOrderness is the MaxOutOfOrderness option: not negative.
func (s *Settings) SetMaxOutOfOrderness(d time.Duration) error {
	return nonNegative("MaxOutOfOrderness", d, &s.MaxOutOfOrderness)
}

// SetIdleWatermark is the IdleWatermark option: positive.
func (s *Settings) SetIdleWatermark(d time.Duration) error {
	return positive("IdleWatermark", d, &s.IdleWatermark)
}

// SetWatermarkStep is the WatermarkStep option: not negative (0 moves the
// watermark every millisecond).
func (s *Settings) SetWatermarkStep(d time.Duration) error {
	return nonNegative("WatermarkStep", d, &s.WatermarkStep)
}

// SetMaxBuffered is the MaxBuffered option: between 1 and 1e6.
func (s *Settings) SetMaxBuffered(n int) error {
	return inRange("MaxBuffered", n, 1, 1e6, &s.MaxBuffered)
}

// SetMaxBundle is the MaxBundle option: at least one record and a positive
// duration.
func (s *Settings) SetMaxBundle(records int, d time.Duration) error {
	if records < 1 {
		return optcheck.Errorf("MaxBundle", "records must be at least 1, got %d", records)
	}
	if d <= 0 {
		return optcheck.Errorf("MaxBundle", "duration must be positive, got %v", d)
	}
	s.MaxBundleSize, s.MaxBundleTime = records, d
	return nil
}

// PollWait is how long a reader waits for its next message: not at all once
// full is set (the broker holds back more until the bundle commits),
// briefly while a bundle is under way, and up to the idle-watermark period
// when the bundle has emitted nothing yet.
func (s *Settings) PollWait(emitted int, elapsed time.Duration, full bool) time.Duration {
	switch {
	case full:
		return 0
	case emitted > 0:
		return min(5*time.Millisecond, s.MaxBundleTime-elapsed)
	default:
		return min(s.IdleWatermark, s.MaxBundleTime*4)
	}
}

func inRange[N int | int64](name string, n, lo, hi N, field *N) error {
	if n < lo || n > hi {
		if hi >= 1<<62 {
			return optcheck.Errorf(name, "must be at least %d, got %d", lo, n)
		}
		return optcheck.Errorf(name, "must be between %d and %d, got %d", lo, hi, n)
	}
	*field = n
	return nil
}

func positive(name string, d time.Duration, field *time.Duration) error {
	if err := optcheck.CheckPositive(name, d); err != nil {
		return err
	}
	*field = d
	return nil
}

func nonNegative(name string, d time.Duration, field *time.Duration) error {
	if err := optcheck.CheckNonNegative(name, d); err != nil {
		return err
	}
	*field = d
	return nil
}
