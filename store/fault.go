package store

// FaultMidTransaction is the store's fault point inside SaveBatch: the
// batch's containers and artifacts are written, its offsets and the commit
// are not. A process killed there must leave none of the batch behind.
const FaultMidTransaction = "mid_transaction"

// SetFaultHook calls hook at the store's fault points. Tests kill the
// process there to prove a crash loses and duplicates nothing; it is not
// for production use. Set it before the DB is shared.
func (db *DB) SetFaultHook(hook func(point string)) {
	if hook == nil {
		hook = func(string) {}
	}
	db.fault = hook
}
