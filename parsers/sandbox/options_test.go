package sandbox

import (
	"encoding/json"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/soarkafka/soarkafka/soar"
)

// Results encode as the SOAR bodies they stand for: a json.Number (what
// soar.JSON decodes numbers into) as a number, invalid UTF-8 replaced, not
// an error.
func TestResultOptions(t *testing.T) {
	ev, err := soar.JSON([]byte(`{"bytes": 12345678901234567890, "ratio": 0.5}`))
	if err != nil {
		t.Fatal(err)
	}
	results := []soar.Result{{Container: soar.Container{Name: "c\xff", Data: ev, Extra: map[string]any{"n": json.Number("7")}},
		Artifacts: []soar.Artifact{{CEF: map[string]any{"message": "bin\xfe\xff", "n": json.Number("-1.5e3")}}}}}
	b, err := jsonv2.Marshal(results, ResultOptions())
	if err != nil {
		t.Fatal(err)
	}
	want := "[{\"container\":{\"name\":\"c\ufffd\",\"data\":{\"bytes\":12345678901234567890,\"ratio\":0.5},\"n\":7}," +
		"\"artifacts\":[{\"cef\":{\"message\":\"bin\ufffd\ufffd\",\"n\":-1.5e3}}]}]"
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if _, err := jsonv2.Marshal(map[string]any{"n": json.Number("1x")}, ResultOptions()); err == nil {
		t.Fatal("a json.Number that is no number encoded")
	}
}
