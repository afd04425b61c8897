// Package optcheck holds what the functional options of the project's
// transforms share: errors that name the option given a bad value, and the
// common checks of durations.
package optcheck

import (
	"fmt"
	"reflect"
	"time"
)

// Errorf is the error of the option name given a bad value: "option NAME:"
// and the message.
func Errorf(name string, format string, args ...any) error {
	return fmt.Errorf("option %s: %s", name, fmt.Sprintf(format, args...))
}

// CheckPositive fails naming the option unless d is positive.
func CheckPositive(name string, d time.Duration) error {
	if d <= 0 {
		return Errorf(name, "must be positive, got %v", d)
	}
	return nil
}

// CheckNonNegative fails naming the option when d is negative.
func CheckNonNegative(name string, d time.Duration) error {
	if d < 0 {
		return Errorf(name, "must not be negative, got %v", d)
	}
	return nil
}

// Positive returns an option that applies set when d is positive and
// fails naming the option otherwise.
func Positive[C any](name string, d time.Duration, set func(*C)) func(*C) error {
	return checked(CheckPositive(name, d), set)
}

// NonNegative returns an option that applies set unless d is negative, and
// fails naming the option then.
func NonNegative[C any](name string, d time.Duration, set func(*C)) func(*C) error {
	return checked(CheckNonNegative(name, d), set)
}

func checked[C any](err error, set func(*C)) func(*C) error {
	return func(c *C) error {
		if err != nil {
			return err
		}
		set(c)
		return nil
	}
}

// Apply applies opts to cfg in order with apply and returns the first error,
// prefixed with pkg ("mqttio: option QoS: ..."). A nil option is an error
// that names its type, kind.
func Apply[C, O any](pkg string, cfg *C, opts []O, kind string, apply func(O, *C) error) error {
	for _, opt := range opts {
		if v := reflect.ValueOf(opt); !v.IsValid() || (v.Kind() == reflect.Func && v.IsNil()) {
			return fmt.Errorf("%s: nil %s", pkg, kind)
		}
		if err := apply(opt, cfg); err != nil {
			return fmt.Errorf("%s: %w", pkg, err)
		}
	}
	return nil
}
