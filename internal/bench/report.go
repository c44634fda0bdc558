package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one line of the result table.
type row struct {
	name, ours, raw, ratio, target, result string
}

func printTable(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "case\tsoarkafka\traw franz-go\tratio\ttarget\tresult")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.name, r.ours, r.raw, r.ratio, r.target, r.result)
	}
	tw.Flush()
}

// logf reports progress on stderr, so stdout holds the table alone.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// percentile is the nearest-rank p-th percentile of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100 // ceil(n*p/100)
	return s[max(i-1, 0)]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }

func msgs(r float64) string { return count(int(r+0.5)) + " msg/s" }

func pct(f float64) string { return strconv.Itoa(int(f*100+0.5)) + "%" }

func mb(b int64) string { return strconv.FormatInt((b+(1<<19))>>20, 10) + " MB" }

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// count writes n with thousands separators.
func count(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func rateList(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = count(int(r + 0.5))
	}
	return strings.Join(parts, " ")
}
