// Package actions runs the SOAR app actions (test connectivity, on poll, post
// data) against an asset configuration and reports each run as an
// ActionResult in the shape a SOAR platform expects.
package actions

// Action identifiers, as SOAR names them in an app's JSON and in URLs.
const (
	TestConnectivity = "test_connectivity"
	OnPoll           = "on_poll"
	PostData         = "post_data"
)

// Statuses of an action run.
const (
	StatusSuccess = "success"
	StatusFailed  = "failed"
)

// ResultSummary counts the objects an action handled, as SOAR's
// result_summary does.
type ResultSummary struct {
	TotalObjects           int `json:"total_objects"`
	TotalObjectsSuccessful int `json:"total_objects_successful"`
}

// Result is the outcome of one action run with one parameter set. It is
// what the HTTP API returns (with status 200 whatever the outcome) and
// what SOAR reads through its data paths (action_result.data.*,
// action_result.summary, action_result.message).
//
// Data's elements and Summary are each action's own types:
// ConnectivityStep and *ConnectivitySummary for test connectivity,
// PolledContainer and *PollSummary for on poll, *MessageData and
// *PostDataSummary for post data.
type Result struct {
	Identifier    string        `json:"identifier"`
	Status        string        `json:"status"`
	Message       string        `json:"message"`
	Parameter     Echo          `json:"parameter"`
	Data          []any         `json:"data"`
	Summary       any           `json:"summary"`
	ResultSummary ResultSummary `json:"result_summary"`
}

// NewResult returns an empty successful result for the identifier and
// parameters, with non-nil Data and Summary so they encode as [] and {}.
func NewResult(identifier string, params Echo) *Result {
	if params == nil {
		params = Echo{}
	}
	return &Result{Identifier: identifier, Status: StatusSuccess, Parameter: params, Data: []any{}, Summary: struct{}{}}
}

// Fail marks the result failed with a message for the user.
func (r *Result) Fail(msg string) *Result {
	r.Status = StatusFailed
	r.Message = msg
	return r
}
