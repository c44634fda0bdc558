package soarkafka

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// The rules for the names users give (assets, parsers, topics), the
// wording of a value's JSON type and the lenient reading of numbers, shared by every package that checks a
// request, so that one name is refused in the same words everywhere.

var nameRule = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// NameProblem returns what is wrong with the name of an asset or a parser,
// or "" when it is valid. Names appear in URLs, logs and consumer group
// ids, hence the rule.
func NameProblem(name string) string {
	if name == "" {
		return "required"
	}
	if !nameRule.MatchString(name) {
		return fmt.Sprintf("%q: use 1 to 128 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return ""
}

var topicChars = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// TopicNameProblem returns what is wrong with a Kafka topic name, or "" when
// it is valid. Kafka's rule: 1 to 249 characters of ASCII letters, digits,
// '.', '_' and '-', and not "." or "..".
func TopicNameProblem(name string) string {
	switch {
	case name == "":
		return "empty; a topic name has 1 to 249 characters"
	case len(name) > 249:
		return fmt.Sprintf("%d characters long; a topic name has at most 249", len(name))
	case name == "." || name == "..":
		return fmt.Sprintf("%q is not allowed as a topic name", name)
	case !topicChars.MatchString(name):
		return fmt.Sprintf("%q has characters Kafka does not allow; use only ASCII letters, digits, '.', '_' and '-'", name)
	}
	return ""
}

// JSONType names the JSON type of a decoded value for messages: "a string".
func JSONType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number, int, int64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// JSONNumber reads a JSON number, or a string holding one, as SOAR forms
// send numbers either way. The whole text must be the number: fmt.Sscan read
// "10 minutes" as 10, and took NaN.
func JSONNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case string:
		s := strings.TrimSpace(n)
		f, err := strconv.ParseFloat(s, 64)
		if err == nil && !strings.ContainsAny(s, "xX_") && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
	}
	return 0, false
}
