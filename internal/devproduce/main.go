// Command devproduce puts one record on a topic of a plaintext broker, for
// the README's walk-through and for trying the development broker before the
// post data action exists.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	broker := flag.String("broker", "127.0.0.1:9092", "bootstrap broker host:port")
	topic := flag.String("topic", "", "topic to produce to (created on first use by the dev broker)")
	key := flag.String("key", "", "record key")
	value := flag.String("value", "", "record value")
	flag.Parse()
	if *topic == "" {
		fmt.Fprintln(os.Stderr, "devproduce: -topic is required")
		os.Exit(2)
	}
	if err := produce(*broker, *topic, *key, *value); err != nil {
		fmt.Fprintln(os.Stderr, "devproduce:", err)
		os.Exit(1)
	}
}

func produce(broker, topic, key, value string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.AllowAutoTopicCreation())
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rec := &kgo.Record{Topic: topic, Value: []byte(value)}
	if key != "" {
		rec.Key = []byte(key)
	}
	r, err := cl.ProduceSync(ctx, rec).First()
	if err != nil {
		return fmt.Errorf("produce to %s on %s: %w", topic, broker, err)
	}
	fmt.Printf("produced to %s partition %d offset %d\n", r.Topic, r.Partition, r.Offset)
	return nil
}
