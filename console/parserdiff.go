package console

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/soarkafka/soarkafka"
)

// diffLine is one line of a diff between two versions: Op is " ", "-"
// (only in the older) or "+" (only in the newer).
type diffLine struct {
	Op   string
	Text string
}

// maxDiffLines bounds the quadratic table of lineDiff; parsers are far
// smaller.
const maxDiffLines = 5000

// lineDiff is the line diff of a and b by longest common subsequence.
func lineDiff(a, b []string) []diffLine {
	if len(a) > maxDiffLines || len(b) > maxDiffLines {
		out := make([]diffLine, 0, len(a)+len(b))
		for _, l := range a {
			out = append(out, diffLine{"-", l})
		}
		for _, l := range b {
			out = append(out, diffLine{"+", l})
		}
		return out
	}
	// lcs[i][j] is the length of the common subsequence of a[i:], b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []diffLine
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			out = append(out, diffLine{" ", a[i]})
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, diffLine{"-", a[i]})
			i++
		default:
			out = append(out, diffLine{"+", b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		out = append(out, diffLine{"-", a[i]})
	}
	for ; j < len(b); j++ {
		out = append(out, diffLine{"+", b[j]})
	}
	return out
}

type parserDiffData struct {
	pageData
	Name     string
	A, B     int64
	Versions []int64
	Lines    []diffLine
	Error    string
}

// parserDiff shows GET /parsers/{name}/diff?a=1&b=2: the lines version b
// changed from version a.
func (c *Console) parserDiff(w http.ResponseWriter, r *http.Request, s *session) {
	if c.opts.Parsers == nil {
		c.notFound(w, r, s)
		return
	}
	name := r.PathValue("name")
	vs, err := c.opts.Parsers.Versions(r.Context(), name)
	if err != nil || len(vs) == 0 {
		c.notFound(w, r, s)
		return
	}
	d := &parserDiffData{pageData: pageData{Title: "Parser " + name + " versions", Nav: "Parsers"}, Name: name}
	for _, v := range vs {
		d.Versions = append(d.Versions, v.Version)
	}
	latest := d.Versions[len(d.Versions)-1]
	d.B = parseVersion(r.URL.Query().Get("b"), latest)
	d.A = parseVersion(r.URL.Query().Get("a"), max(d.B-1, 1))
	va, erra := c.opts.Parsers.Version(r.Context(), name, d.A)
	vb, errb := c.opts.Parsers.Version(r.Context(), name, d.B)
	switch {
	case erra != nil:
		d.Error = "a: " + soarkafka.ErrorMessage(erra)
	case errb != nil:
		d.Error = "b: " + soarkafka.ErrorMessage(errb)
	default:
		d.Lines = lineDiff(strings.Split(va.Source, "\n"), strings.Split(vb.Source, "\n"))
	}
	c.render(w, r, http.StatusOK, "parserdiff", s, d)
}

func parseVersion(s string, def int64) int64 {
	if v, err := strconv.ParseInt(s, 10, 64); err == nil && v > 0 {
		return v
	}
	return def
}
