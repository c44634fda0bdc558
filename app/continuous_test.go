package app

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The server polls a continuous asset by itself: a message posted to its
// topic is stored about a second later, without any poll asked for; an on
// poll action meanwhile has nothing to do; changed to interval, the
// continuous poll stops and gives the asset's lease up, so the on poll
// action polls again. Every message is stored once.
func TestContinuousAssetEndToEnd(t *testing.T) {
	s, base, token := startWithToken(t)
	post := func(n int) {
		t.Helper()
		body := fmt.Sprintf(`{"asset": "live", "parameters": {"data_type": "JSON", "topic": "alerts", "timeout": 5, "data": "[{\"alert\": %d}]"}}`, n)
		if code, out := call(t, "POST", base+"/v1/actions/post_data", token, body); code != 200 || out["status"] != "success" {
			t.Fatalf("post data %d: %d %v", n, code, out)
		}
	}
	stored := func() float64 {
		t.Helper()
		code, out := call(t, "GET", base+"/v1/artifacts?asset=live", token, "")
		if code != 200 {
			t.Fatalf("artifacts: %d %v", code, out)
		}
		n, _ := out["count"].(float64)
		return n
	}
	waitStored := func(what string, n float64) time.Duration {
		t.Helper()
		t0 := time.Now()
		for stored() != n {
			if time.Since(t0) > 20*time.Second {
				t.Fatalf("%s: %v artifacts stored after 20s, want %v", what, stored(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(t0)
	}
	asset := func(ingest string) string {
		return fmt.Sprintf(`{"hosts": %q, "topic": "alerts", "read_from_beginning": true, "ingest": %s}`, s.BrokerAddr(), ingest)
	}

	// The first message makes the topic on the dev broker.
	if code, out := call(t, "POST", base+"/v1/assets", token, `{"name": "live", "config": `+asset(`{"interval": "1h", "enabled": false}`)+`}`); code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}
	post(1)
	if code, out := call(t, "PUT", base+"/v1/assets/live", token, `{"config": `+asset(`{"mode": "continuous", "max_batch_wait_ms": 100}`)+`}`); code != 200 {
		t.Fatalf("to continuous: %d %v", code, out)
	}
	waitStored("the message from before", 1)
	t0 := time.Now()
	post(2)
	waitStored("a message posted while the continuous poll runs", 2)
	t.Logf("post data to stored, with no poll asked for: %s", time.Since(t0))

	code, out := call(t, "POST", base+"/v1/actions/on_poll", token, `{"asset": "live"}`)
	if code != 200 || out["status"] != "success" || !strings.Contains(fmt.Sprint(out["message"]), "polled continuously") {
		t.Fatalf("on poll of the continuous asset: %d %v", code, out)
	}

	if code, out := call(t, "PUT", base+"/v1/assets/live", token, `{"config": `+asset(`{"interval": "1h"}`)+`}`); code != 200 {
		t.Fatalf("to interval: %d %v", code, out)
	}
	post(3)
	// The continuous poll may still be stopping (and store message 3
	// itself): the action answers that it has nothing to do until the
	// lease is given up, then polls.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out = call(t, "POST", base+"/v1/actions/on_poll", token, `{"asset": "live"}`)
		if code == 200 && out["status"] == "success" && strings.HasPrefix(fmt.Sprint(out["message"]), "Ingested ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("on poll after the change to interval: %d %v", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	post(4)
	code, out = call(t, "POST", base+"/v1/actions/on_poll", token, `{"asset": "live"}`)
	if code != 200 || out["status"] != "success" || !strings.HasPrefix(fmt.Sprint(out["message"]), "Ingested 1 messages") {
		t.Fatalf("on poll of the interval asset: %d %v", code, out)
	}
	if n := stored(); n != 4 {
		t.Fatalf("%v artifacts, want the 4 messages once each", n)
	}
}
