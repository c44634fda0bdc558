package app

import (
	"strings"
	"testing"
	"time"
)

func TestParserPoolConfig(t *testing.T) {
	c, err := LoadConfig("", flags(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := poolConfig(c.Parser, "/bin/soarkafka")
	if p.MaxWorkers != 8 || p.IdleTimeout != time.Minute || p.MaxMemory != 128<<20 || p.BusyWait != 5*time.Second ||
		p.Worker.MemoryLimit != 512<<20 || p.Worker.Exe != "/bin/soarkafka" {
		t.Errorf("defaults: %+v", p)
	}
	c, err = LoadConfig("", flags(t, "--parser-max-workers=3", "--parser-worker-idle-timeout=10s"),
		[]string{"SOARKAFKA_PARSER_MAX_WORKER_RSS_MB=200", "SOARKAFKA_PARSER_BUSY_WAIT=1s"})
	if err != nil {
		t.Fatal(err)
	}
	p = poolConfig(c.Parser, "x")
	if p.MaxWorkers != 3 || p.IdleTimeout != 10*time.Second || p.MaxMemory != 200<<20 || p.BusyWait != time.Second {
		t.Errorf("set: %+v", p)
	}

	for _, tt := range []struct {
		env  []string
		want string
	}{
		{[]string{"SOARKAFKA_PARSER_MAX_WORKERS=0"}, "parser.max_workers: 0: use 1 to 1024"},
		{[]string{"SOARKAFKA_PARSER_WORKER_IDLE_TIMEOUT=10ms"}, "parser.worker_idle_timeout: 10ms is too short"},
		{[]string{"SOARKAFKA_PARSER_MAX_WORKER_RSS_MB=600"}, "parser.max_worker_rss_mb: 600: use at least 32 and at most parser.memory_limit_mb (512)"},
		{[]string{"SOARKAFKA_PARSER_BUSY_WAIT=1h"}, "parser.busy_wait: 1h0m0s: use 10ms to 5m"},
	} {
		if _, err := LoadConfig("", flags(t), tt.env); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err %v, want %q", tt.env, err, tt.want)
		}
	}
}
