package mqttio

import "github.com/mqttbeam/mqttbeam/internal/streamread"

// restriction is the work of one reader: the offsets of the messages it
// emits, numbered in emission order by the reader's session (see
// streamread.Restriction). ClientID is the reader's MQTT client id.
type restriction = streamread.Restriction

// tracker claims offsets of a restriction, splits at checkpoints only and
// reports the messages waiting on the worker as the backlog (see
// streamread.Tracker).
type tracker = streamread.Tracker
