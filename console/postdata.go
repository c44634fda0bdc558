package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/soarkafka/soarkafka"
	"github.com/soarkafka/soarkafka/actions"
)

// postDataTimeout is how long the page waits for each message's
// acknowledgement. The post data action reports partitions and offsets
// only when it waits, and they are what the page is for.
const postDataTimeout = 30 * time.Second

type assetTopic struct{ Name, Topic string }

type postDataData struct {
	pageData
	Assets []assetTopic
	// The form as given, shown back.
	Asset, Topic, Key, Headers, DataType, Data, Partition string
	// Errors are the bad fields by input name; Error is what failed
	// beyond them.
	Errors map[string]string
	Error  string
	Result *actions.Result
	Sent   []*actions.MessageData
}

func (c *Console) postDataPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := c.newPostData(r)
	d.Asset = r.URL.Query().Get("asset")
	d.DataType = "json"
	for _, a := range d.Assets {
		if a.Name == d.Asset {
			d.Topic = a.Topic
		}
	}
	c.render(w, r, http.StatusOK, "postdata", s, d)
}

func (c *Console) newPostData(r *http.Request) *postDataData {
	d := &postDataData{pageData: pageData{Title: "Post data", Nav: "Post data"}, Errors: map[string]string{}}
	list, err := c.opts.Assets.List(r.Context())
	if err != nil {
		d.Error = "The assets could not be read: " + soarkafka.ErrorMessage(err)
	}
	for _, v := range list {
		a := assetTopic{Name: v.Name}
		if cfg, _, err := c.opts.Assets.Resolve(r.Context(), v.Name); err == nil {
			a.Topic = cfg.Topic
		}
		d.Assets = append(d.Assets, a)
	}
	return d
}

// postData sends the form's data with the post data action, the run the
// API's POST /v1/actions/post_data makes, and shows where each message
// landed. The API does not audit post data (it changes no configuration),
// so neither does the console.
func (c *Console) postData(w http.ResponseWriter, r *http.Request, s *session) {
	d := c.newPostData(r)
	d.Asset = strings.TrimSpace(r.PostFormValue("asset"))
	d.Topic = strings.TrimSpace(r.PostFormValue("topic"))
	d.Key = r.PostFormValue("key")
	d.Headers = r.PostFormValue("headers")
	d.DataType = r.PostFormValue("data_type")
	d.Data = r.PostFormValue("data")
	d.Partition = strings.TrimSpace(r.PostFormValue("partition"))

	var target actions.Target
	switch {
	case d.Asset == "":
		d.Errors["asset"] = "required: choose the asset whose Kafka the data goes to"
	default:
		cfg, _, err := c.opts.Assets.Resolve(r.Context(), d.Asset)
		if err != nil {
			d.Errors["asset"] = soarkafka.ErrorMessage(err)
			break
		}
		target = actions.Target{Asset: d.Asset, Config: cfg}
	}
	topic := d.Topic
	if topic == "" {
		// The asset's own topic; with no asset, the asset's error is
		// the one to fix.
		topic = target.Config.Topic
	}

	fields := actions.Fields{
		{Name: "data_type", Value: quote(d.DataType)},
		{Name: "data", Value: quote(d.Data)},
		{Name: "timeout", Value: jsontext.Value(strconv.Itoa(int(postDataTimeout / time.Second)))},
	}
	fields = append(fields, actions.Field{Name: "topic", Value: quote(topic)})
	if d.Key != "" {
		fields = append(fields, actions.Field{Name: "key", Value: quote(d.Key)})
	}
	if hdrs, err := headersJSON(d.Headers); err != nil {
		d.Errors["headers"] = err.Error()
	} else if hdrs != nil {
		fields = append(fields, actions.Field{Name: "headers", Value: hdrs})
	}
	if d.Partition != "" {
		v := quote(d.Partition)
		if _, err := strconv.ParseFloat(d.Partition, 64); err == nil {
			v = jsontext.Value(d.Partition)
		}
		fields = append(fields, actions.Field{Name: "partition", Value: v})
	}
	// The API's decoder, so that every bad field reads as it does there.
	p, err := actions.DecodePostData(fields, nil)
	if err != nil {
		var se *soarkafka.Error
		if !errors.As(err, &se) || len(se.Fields) == 0 {
			d.Error = soarkafka.ErrorMessage(err)
		} else {
			for _, fe := range se.Fields {
				if _, seen := d.Errors[fe.Field]; !seen {
					d.Errors[fe.Field] = fe.Message
				}
			}
		}
	}
	if topic == "" && d.Errors["asset"] != "" {
		// No asset, no topic to default to: the asset is what to fix.
		delete(d.Errors, "topic")
	}
	if _, bad := d.Errors["data"]; !bad && strings.EqualFold(strings.TrimSpace(d.DataType), "json") {
		// The action's own split, run before anything connects, so that
		// a syntax error shows beside the data with its line and column.
		if _, err := actions.SplitJSON([]byte(d.Data)); err != nil {
			d.Errors["data"] = err.Error()
		}
	}
	if len(d.Errors) > 0 || d.Error != "" {
		p.Release()
		c.render(w, r, http.StatusUnprocessableEntity, "postdata", s, d)
		return
	}
	defer p.Release()
	if c.opts.Actions == nil {
		d.Error = "Post data is not available on this server."
		c.render(w, r, http.StatusServiceUnavailable, "postdata", s, d)
		return
	}
	res, err := c.opts.Actions.PostData(r.Context(), target, &p)
	if err != nil {
		c.opts.Logger.Error("console: post data", "asset", d.Asset, "err", err)
		d.Error = "Post data failed: " + soarkafka.ErrorMessage(err)
		c.render(w, r, http.StatusBadGateway, "postdata", s, d)
		return
	}
	d.Result = res
	for _, x := range res.Data {
		if m, ok := x.(*actions.MessageData); ok {
			d.Sent = append(d.Sent, m)
		}
	}
	if d.Topic == "" {
		d.Topic = topic
	}
	c.render(w, r, http.StatusOK, "postdata", s, d)
}

func quote(s string) jsontext.Value {
	b, err := jsontext.AppendQuote(nil, s)
	if err != nil {
		// Invalid UTF-8 from a form: AppendQuote replaces it but still
		// reports it; the replaced text is what is sent.
		b, _ = json.Marshal(s)
	}
	return jsontext.Value(b)
}

// headersJSON turns the headers input, one "name: value" a line, into
// post data's headers object, in the order given; nil for none.
func headersJSON(text string) (jsontext.Value, error) {
	var b []byte
	n := 0
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("line %d %q is not a header: write one a line as name: value", i+1, line)
		}
		if n == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		n++
		b = append(b, quote(name)...)
		b = append(b, ':')
		b = append(b, quote(strings.TrimSpace(value))...)
	}
	if n == 0 {
		return nil, nil
	}
	return jsontext.Value(append(b, '}')), nil
}
