package actions

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

func TestZZProbe(t *testing.T) {
	for _, in := range []string{"10 minutes", "5s", "NaN", "nan", "inf", " 7 ", "1e3", "0x10"} {
		f, ok := number(in)
		fmt.Printf("number(%q) = %v %v\n", in, f, ok)
	}
	for _, in := range []string{"[\n  {\"a\": 1},\n  {\"b\": }\n]", "[1, 2", "{\"é\": x}", "1 2", "[1,]", "\"abc", "tru", "{\"a\":1}}"} {
		_, err := SplitJSON([]byte(in))
		fmt.Printf("%q -> %v\n", in, err)
	}
	r, _ := newTestRunner(5 * time.Second)
	defer r.Close()
	c := testenv.NewKafka(t)
	testenv.CreateKafkaTopic(t, c, "t", 1)
	cfg := decodeConfig(t, map[string]any{"hosts": strings.Join(c.ListenAddrs(), ","), "topic": "t", "producer": map[string]any{"max_message_bytes": 1024}})
	res, err := r.PostData(context.Background(), Target{Asset: "a", Config: cfg}, map[string]any{"data_type": "string", "data": strings.Repeat("x", 1000), "topic": "t"})
	fmt.Println("near-limit:", res.Status, res.Message, err)
	start := time.Now()
	res, err = r.PostData(context.Background(), Target{Asset: "a", Config: cfg}, map[string]any{"data_type": "string", "data": "x", "topic": "nope"})
	fmt.Println("unknown topic:", time.Since(start), res.Status, res.Message, err)
	cfg2 := decodeConfig(t, map[string]any{"hosts": testenv.RefusingTCPAddr(t), "topic": "t"})
	start = time.Now()
	res, err = r.PostData(context.Background(), Target{Asset: "b", Config: cfg2}, map[string]any{"data_type": "string", "data": "x", "topic": "t"})
	fmt.Println("refused:", time.Since(start), res.Status, res.Message, err)
	_ = kfake.NumBrokers
}
