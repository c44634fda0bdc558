// Package soarkafka holds what every layer of the server shares: the one
// application error type and its codes. Packages wrap their errors with
// context and turn them into *Error where they cross into the web layer or an
// action result; web maps the codes to HTTP statuses in one place.
package soarkafka

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status in web.
const (
	EINVALID      = "invalid"      // the request or a document in it is bad (400)
	ENOTFOUND     = "not_found"    // the thing named does not exist (404)
	ECONFLICT     = "conflict"     // it exists already, or is in use (409)
	EUNAUTHORIZED = "unauthorized" // no or bad credentials (401)
	ETOOLARGE     = "too_large"    // the request body is over the limit (413)
	EUNAVAILABLE  = "unavailable"  // a dependency (the store) cannot be reached (503)
	EINTERNAL     = "internal"     // a fault of the server itself (500)
)

// FieldError is one bad field of a document, named by its dotted path.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Error is the application error: a code for machines, a message for people
// that names the field or thing and the fix, and, for validation, every bad
// field at once.
type Error struct {
	Code    string
	Message string
	Fields  []FieldError
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	msg := e.Message
	for _, f := range e.Fields {
		msg += "; " + f.Error()
	}
	return msg
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err: the *Error's message
// when there is one, a generic text for internal faults (their detail belongs
// in the log, not in a response).
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Error()
	}
	return "internal error"
}
