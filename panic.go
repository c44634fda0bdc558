package soarkafka

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// PanicError is a panic stopped by Recover: the work that panicked failed,
// the process goes on. Its message is what an asset's ingest status or an
// action result shows; the stack goes to the log only.
type PanicError struct {
	What  string // the work that panicked: "scheduled poll", "parse batch"
	Value any    // what was passed to panic
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("internal error: %s panicked: %v (the server went on; its log has the stack)", e.What, e.Value)
}

// Recover stops a panic of the goroutine it is deferred in, so that no
// input can take the whole server down: it logs the panic with its stack
// and hands it, as a *PanicError, to onPanic (nil: none), which records the
// failure against the asset or the request. It must be deferred directly:
//
//	defer soarkafka.Recover(ctx, logger, "scheduled poll", func(e *soarkafka.PanicError) { err = e }, "asset", name)
//
// Every goroutine the server starts defers it (or runs through Go); a
// goroutine left to panic would end the process and every other asset's
// work with it.
func Recover(ctx context.Context, logger *slog.Logger, what string, onPanic func(*PanicError), attrs ...any) {
	v := recover()
	if v == nil {
		return
	}
	e := &PanicError{What: what, Value: v, Stack: debug.Stack()}
	if logger != nil {
		logger.ErrorContext(ctx, "panic stopped; the server goes on", append([]any{"in", what, "panic", fmt.Sprint(v), "stack", string(e.Stack)}, attrs...)...)
	}
	if onPanic != nil {
		onPanic(e)
	}
}

// Go runs fn on a goroutine of its own under Recover: a panic in fn is
// logged and ends fn only.
func Go(ctx context.Context, logger *slog.Logger, what string, fn func(), attrs ...any) {
	go func() {
		defer Recover(ctx, logger, what, nil, attrs...)
		fn()
	}()
}
