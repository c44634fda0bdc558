package app

import (
	"strings"
	"testing"
)

// Numbers past what a setting's unit conversion holds are refused naming
// the key, never wrapped around: parser.memory_limit_mb is shifted to
// bytes, and 9223372036854775807 MiB became a negative limit.
func TestConfigHugeNumbers(t *testing.T) {
	for _, tt := range []struct{ env, want string }{
		{"SOARKAFKA_PARSER_MEMORY_LIMIT_MB=9223372036854775807", "parser.memory_limit_mb: 9223372036854775807 is too large; give at most 1048576"},
		{"SOARKAFKA_PARSER_MEMORY_LIMIT_MB=8796093022208", "parser.memory_limit_mb: 8796093022208 is too large"}, // 2^43: << 20 is 2^63
		{"SOARKAFKA_PARSER_MEMORY_LIMIT_MB=99999999999999999999", "parser.memory_limit_mb"},
		{"SOARKAFKA_MAX_BODY_BYTES=99999999999999999999", "max_body_bytes"},
		{"SOARKAFKA_SHUTDOWN_TIMEOUT=9223372036854775807h", "shutdown_timeout"},
		{"SOARKAFKA_DEV_BROKER_PARTITIONS=99999999999999999999", "dev_broker.partitions"},
	} {
		_, err := LoadConfig("", flags(t), []string{tt.env})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.env, err, tt.want)
		}
	}
	c, err := LoadConfig("", flags(t), []string{"SOARKAFKA_PARSER_MEMORY_LIMIT_MB=1048576"})
	if err != nil || c.Parser.MemoryLimitMB<<20 != 1<<40 {
		t.Fatalf("1 TiB: %v %d", err, c.Parser.MemoryLimitMB)
	}
}
