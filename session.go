package soarkafka

import "time"

// ConsoleSession is a web console session as it is kept in the store, so
// that every replica on one database knows it. The cookie's id is never
// kept: IDHash is the hex SHA-256 of it, which finds the row but cannot be
// turned back into a cookie that signs in.
type ConsoleSession struct {
	IDHash string
	// CSRF is the token the session's forms and htmx requests carry.
	CSRF string
	// Actor is the session's name in the audit trail (audit.ConsoleActor).
	Actor   string
	Created time.Time
	// LastSeen is the last request that counted as activity, written at
	// most once a minute (see the console's sessions), so it may lag the
	// real last request by up to that minute.
	LastSeen time.Time
}
