package main

import (
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	in := `raw_paho_qos0_msgs_per_s=100000
noise without equals
read_qos0_msgs_per_s=95000
raw_paho_qos1_default_inflight_msgs_per_s=0
read_qos1_default_inflight_msgs_per_s=5000
raw_paho_publish_qos1_msgs_per_s=40000
write_qos1_msgs_per_s=36000
read_qos0_msgs_per_s=96000
read5_qos1_raised_inflight_msgs_per_s=30000
read_qos1_raised_inflight_msgs_per_s=32000
`
	got, spread, err := summarize(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"raw_paho_qos0_msgs_per_s=100000",
		"read_qos0_msgs_per_s=95500", // median of the two runs
		"raw_paho_qos1_default_inflight_msgs_per_s=0",
		"read_qos1_default_inflight_msgs_per_s=5000",
		"raw_paho_publish_qos1_msgs_per_s=40000",
		"write_qos1_msgs_per_s=36000",
		"read5_qos1_raised_inflight_msgs_per_s=30000",
		"read_qos1_raised_inflight_msgs_per_s=32000",
		"write_qos1_ratio=0.900",
		"read_qos1_default_inflight_ratio=n/a", // zero denominator
		"read_qos1_raised_inflight_ratio=n/a",  // missing
		"write5_qos1_ratio=n/a",
		"read5_qos0_ratio=n/a",
		"read5_qos1_default_inflight_ratio=n/a",
		"read5_qos1_raised_inflight_ratio=n/a",
		"write5_vs_v3_qos1=n/a",
		"read5_vs_v3_qos0=n/a",
		"read5_vs_v3_qos1_default_inflight=n/a",
		"read5_vs_v3_qos1_raised_inflight=0.938",
		"read_qos0_ratio=0.955",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("summarize:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(spread) != 1 || spread[0] != "read_qos0_msgs_per_s: 95000 96000" {
		t.Errorf("spread = %q", spread)
	}
	if last := got[len(got)-1]; !strings.HasPrefix(last, "read_qos0_ratio=") {
		t.Errorf("last line %q, want read_qos0_ratio=", last)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"7"}, "7"},
		{[]string{"3", "1", "2"}, "2"},
		{[]string{"1.50", "2.00"}, "1.75"},
		{[]string{"10", "40", "20", "30"}, "25"},
		{[]string{"1", "n/a"}, "n/a"},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStatusKB(t *testing.T) {
	status := "Name:\tmqttiobench\nVmPeak:\t  2000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n"
	if got, err := statusKB(status, "VmHWM"); err != nil || got != 51234 {
		t.Errorf("VmHWM = %d, %v; want 51234", got, err)
	}
	if _, err := statusKB(status, "VmSwap"); err == nil {
		t.Error("missing field: no error")
	}
	if _, err := statusKB("VmHWM:\t12 MB\n", "VmHWM"); err == nil {
		t.Error("bad unit: no error")
	}
	if got, err := memKB("VmHWM"); err != nil || got <= 0 {
		t.Errorf("memKB(VmHWM) = %d, %v", got, err)
	}
}

func TestPayloads(t *testing.T) {
	d := dataPayload(123456, 100)
	if len(d) != 100 || string(d[:11]) != "d000123456:" {
		t.Fatalf("dataPayload = %q", d)
	}
	if k, s := parsePayload(d); k != 'd' || s != 123456 {
		t.Errorf("parsePayload(data) = %c %d", k, s)
	}
	if k, s := parsePayload(probePayload(42)); k != 'p' || s != 42 {
		t.Errorf("parsePayload(probe) = %c %d", k, s)
	}
	for _, bad := range []string{"", "d12", "x000000001", "d00000000a:"} {
		if k, _ := parsePayload([]byte(bad)); k != 0 {
			t.Errorf("parsePayload(%q) = kind %c, want none", bad, k)
		}
	}
}

func TestCounter(t *testing.T) {
	c := newCounter(40)
	t0 := time.Unix(100, 0)
	c.observe(probePayload(7), t0)
	c.observe(probePayload(5), t0)
	for i, seq := range []int{0, 33, 33, 39, 40} {
		c.observe(dataPayload(seq, 20), t0.Add(time.Duration(i)*time.Second))
	}
	c.observe([]byte("junk"), t0)
	if c.probes.Load() != 2 || c.minProbe.Load() != 5 {
		t.Errorf("probes %d min %d, want 2 and 5", c.probes.Load(), c.minProbe.Load())
	}
	if c.unique.Load() != 3 || c.dups.Load() != 1 || c.data.Load() != 4 || c.other.Load() != 2 {
		t.Errorf("unique %d dups %d data %d other %d, want 3 1 4 2", c.unique.Load(), c.dups.Load(), c.data.Load(), c.other.Load())
	}
	// 4 data messages between t0 and t0+3s (seq 40 is out of range).
	if r := c.rate(); r < 1.33 || r > 1.34 {
		t.Errorf("rate = %v, want 4/3", r)
	}
}
