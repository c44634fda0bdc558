package cloudtrail

import _ "embed"

// Source is the parser's Go source, as the sandbox runs it and as users see
// it in the API: the same text the binary compiles natively.
//
//go:embed cloudtrail.go
var Source string
