package sparkplug_test

import (
	"fmt"
	"time"

	"github.com/mqttbeam/mqttbeam/transforms/telemetry/sparkplug"
)

func ExampleParseTopic() {
	t, err := sparkplug.ParseTopic("spBv1.0/plant-1/DDATA/edge-7/pump-3")
	if err != nil {
		panic(err)
	}
	fmt.Println(t.Group, t.Type, t.EdgeNode, t.Device, t.IsTelemetry())
	_, err = sparkplug.ParseTopic("spBv1.0/plant-1/DDATA/edge-7")
	fmt.Println(err)
	// Output:
	// plant-1 DDATA edge-7 pump-3 true
	// topic "spBv1.0/plant-1/DDATA/edge-7": a DDATA needs a device level
}

// Encode a DBIRTH's payload and decode it again, as an edge node and a
// host application do.
func ExampleDecode() {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	birth := sparkplug.Payload{Timestamp: uint64(at.UnixMilli()), Seq: 1, HasSeq: true, Metrics: []sparkplug.Metric{
		{Name: "temperature", Alias: 1, HasAlias: true, DataType: sparkplug.Double, Value: sparkplug.DoubleValue(21.5)},
		{Name: "mode", Alias: 2, HasAlias: true, DataType: sparkplug.String, Value: sparkplug.StringValue("auto")},
	}}
	b := birth.Marshal()

	var p sparkplug.Payload
	if err := sparkplug.Decode(b, &p); err != nil {
		panic(err)
	}
	fmt.Println(p.Time(), p.Seq)
	for _, m := range p.Metrics {
		if v, ok := m.Value.Number(m.DataType); ok {
			fmt.Println(m.Alias, m.Name, m.DataType, v)
		} else {
			fmt.Println(m.Alias, m.Name, m.DataType, string(m.Value.Raw))
		}
	}
	fmt.Println(sparkplug.Decode(b[:len(b)-5], &p)) // truncated
	// Output:
	// 2024-05-01 12:00:00 +0000 UTC 1
	// 1 temperature Double 21.5
	// 2 mode String auto
	// metric 1 at byte 36: unexpected EOF
}

// Ask an edge node to publish its BIRTHs again: an NCMD with metric
// "Node Control/Rebirth" true, to the topic of NCMDTemplate (in a Beam job,
// mqttio.Write with mqttio.TopicTemplate(sparkplug.NCMDTemplate) fills and
// checks it).
func ExampleRebirthRequest() {
	topic := sparkplug.Topic{Group: "plant-1", Type: sparkplug.NCMD, EdgeNode: "edge-7"}
	payload := sparkplug.RebirthRequest(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))

	var p sparkplug.Payload
	if err := sparkplug.Decode(payload, &p); err != nil {
		panic(err)
	}
	fmt.Println(topic, sparkplug.NCMDTemplate)
	fmt.Println(p.Metrics[0].Name, p.Metrics[0].DataType, p.Metrics[0].Value.Bits == 1)
	// Output:
	// spBv1.0/plant-1/NCMD/edge-7 spBv1.0/{group_id}/NCMD/{edge_node_id}
	// Node Control/Rebirth Boolean true
}
