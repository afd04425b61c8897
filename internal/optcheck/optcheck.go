// Package optcheck holds what the functional options of the project's
// transforms share: errors that name the option given a bad value, and the
// common checks of durations.
package optcheck

import (
	"fmt"
	"time"
)

// Errorf is the error of the option name given a bad value: "option NAME:"
// and the message.
func Errorf(name string, format string, args ...any) error {
	return fmt.Errorf("option %s: %s", name, fmt.Sprintf(format, args...))
}

// Positive returns an option that applies set when d is positive and
// fails naming the option otherwise.
func Positive[C any](name string, d time.Duration, set func(*C)) func(*C) error {
	return func(c *C) error {
		if d <= 0 {
			return Errorf(name, "must be positive, got %v", d)
		}
		set(c)
		return nil
	}
}

// NonNegative returns an option that applies set unless d is negative, and
// fails naming the option then.
func NonNegative[C any](name string, d time.Duration, set func(*C)) func(*C) error {
	return func(c *C) error {
		if d < 0 {
			return Errorf(name, "must not be negative, got %v", d)
		}
		set(c)
		return nil
	}
}
