package web_test

import (
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/soarkafka/soarkafka/internal/testenv"
)

// pullAll pages GET /v1/pull from cursor until more is false, and returns
// the containers of every answer and the last cursor.
func (e *env) pullAll(asset, cursor, bounds string) ([]map[string]any, string) {
	e.t.Helper()
	var all []map[string]any
	for range 1000 {
		code, out := e.do("GET", "/v1/pull?asset="+url.QueryEscape(asset)+"&cursor="+url.QueryEscape(cursor)+bounds, nil)
		if code != 200 {
			e.t.Fatalf("pull from %q: %d %v", cursor, code, out)
		}
		for _, c := range out["containers"].([]any) {
			all = append(all, c.(map[string]any))
		}
		next := out["cursor"].(string)
		if out["more"] != true {
			return all, next
		}
		if next == cursor {
			e.t.Fatalf("pull from %q: more, but the same cursor", cursor)
		}
		cursor = next
	}
	e.t.Fatal("pull never ended")
	return nil, ""
}

func TestPullShapesAndPaging(t *testing.T) {
	e := newContainersEnv(t)
	ids := e.seedContainers()

	all, end := e.pullAll("a", "", "")
	var names []string
	for _, c := range all {
		var arts []string
		for _, a := range c["artifacts"].([]any) {
			arts = append(arts, a.(map[string]any)["source_data_identifier"].(string))
		}
		names = append(names, fmt.Sprintf("%s%v", c["name"], arts))
	}
	if want := "[one[a:1 a:2 a:4] two[a:3] three[] five[a:5]]"; fmt.Sprint(names) != want {
		t.Fatalf("pull of a: %v, want %s", names, want)
	}
	// A container is as GET /v1/containers/{id} shows it, its artifacts as
	// GET /v1/artifacts does.
	code, one := e.do("GET", fmt.Sprintf("/v1/containers/%d", ids["one"]), nil)
	if code != 200 {
		t.Fatalf("get one: %d %v", code, one)
	}
	if !reflect.DeepEqual(all[0], one) {
		t.Fatalf("pulled container\n%v\nGET /v1/containers/{id}\n%v", all[0], one)
	}
	code, arts := e.do("GET", "/v1/artifacts?asset=a&page_size=0", nil)
	if code != 200 || !reflect.DeepEqual(all[3]["artifacts"].([]any)[0], arts["data"].([]any)[4]) {
		t.Fatalf("pulled artifact %v, listed %v", all[3]["artifacts"], arts)
	}

	// cursor=end: nothing, and the cursor where paging ended.
	code, out := e.do("GET", "/v1/pull?asset=a&cursor=end", nil)
	if code != 200 || len(out["containers"].([]any)) != 0 || out["more"] != false || out["cursor"] != end {
		t.Fatalf("cursor=end: %d %v, want no containers and cursor %s", code, out, end)
	}
	e.saveContainers(containersT0, "a", soarContainer("c3", "three", "events", "medium", "", "a:6"))
	later, _ := e.pullAll("a", end, "")
	if len(later) != 1 || later[0]["name"] != "three" || len(later[0]["artifacts"].([]any)) != 1 || later[0]["artifact_count"] != 1.0 {
		t.Fatalf("pull after a:6: %v, want three with a:6 only", later)
	}

	// Bounds: one artifact, then one container, an answer.
	for _, bounds := range []string{"&max_artifacts=1", "&max_containers=1", "&max_artifacts=10000&max_containers=1000"} {
		got, _ := e.pullAll("a", "", bounds)
		seen := map[string]int{}
		for _, c := range got {
			if bounds == "&max_artifacts=1" {
				if n := len(c["artifacts"].([]any)); n > 1 {
					t.Fatalf("%s: %d artifacts in an answer", bounds, n)
				}
			}
			for _, a := range c["artifacts"].([]any) {
				seen[a.(map[string]any)["source_data_identifier"].(string)]++
			}
		}
		var list []string
		for a, n := range seen {
			if n != 1 {
				t.Fatalf("%s: artifact %s pulled %d times", bounds, a, n)
			}
			list = append(list, a)
		}
		sort.Strings(list)
		if fmt.Sprint(list) != "[a:1 a:2 a:3 a:4 a:5 a:6]" {
			t.Fatalf("%s: artifacts pulled %v", bounds, list)
		}
	}
	if got, _ := e.pullAll("b", "", ""); len(got) != 1 || got[0]["name"] != "four" {
		t.Fatalf("pull of b: %v", got)
	}
	if got, _ := e.pullAll("soar:17", "", ""); len(got) != 0 {
		t.Fatalf("pull of soar:17: %v, want nothing", got)
	}
}

func TestPullBadQueries(t *testing.T) {
	e := newIngestEnv(t, testenv.SQLiteURL(t))
	for query, fields := range map[string][]string{
		"":                    {"asset"},
		"asset=a&cursor=12":   {"cursor"},
		"asset=a&cursor=v1-1": {"cursor"},
		"asset=soar:":         {"asset"},
		"asset=soar:a/b":      {"asset"},
		"asset=a&max_artifacts=0&max_containers=1001":  {"max_artifacts", "max_containers"},
		"asset=a&max_artifacts=10001&max_containers=x": {"max_artifacts", "max_containers"},
		"asset=a&since_id=3":                           {"since_id"},
		"asset=a&cursor=end&cursor=end":                {"cursor"},
	} {
		code, out := e.do("GET", "/v1/pull?"+query, nil)
		var got []string
		list, _ := errField(out, "fields").([]any)
		for _, f := range list {
			got = append(got, f.(map[string]any)["field"].(string))
		}
		sort.Strings(got)
		if code != 400 || !reflect.DeepEqual(got, fields) {
			t.Errorf("GET /v1/pull?%s: %d %v, want 400 naming %v", query, code, out, fields)
		}
	}
	code, out := e.do("GET", "/v1/pull?asset=nope", nil)
	if code != 404 || !strings.Contains(fmt.Sprint(errField(out, "message")), `asset "nope" not found`) {
		t.Fatalf("unknown asset: %d %v", code, out)
	}
}
