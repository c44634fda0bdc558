// Package sandbox runs user parser scripts (Go source defining
// ParseMessages, see package soar) safely: the server process only parses a
// script (Check); compiling and running it happen in child worker processes
// (Worker, Pool) with the yaegi interpreter, an allow-list of standard
// library packages, a memory limit and a deadline on every request.
//
// yaegi cannot be contained in-process:
// a script can change the host's package variables, start goroutines that
// outlive a call, block in compiled stdlib code, exhaust memory or crash
// yaegi's own compiler. A worker process that is killed at the deadline, or
// dies, takes all of that with it, and the server is not harmed.
//
// The worker is this same binary run with a hidden subcommand whose only
// job is to call WorkerMain; Config.Exe and Config.Args say how to start it.
package sandbox

//go:generate go run github.com/traefik/yaegi/cmd/yaegi@v0.16.1 extract -name sandbox github.com/soarkafka/soarkafka/soar
//go:generate mv github_com-soarkafka-soarkafka-soar.go soar_symbols.go

import (
	"encoding/json"
	"fmt"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"reflect"
	"sort"

	"github.com/traefik/yaegi/stdlib"
)

// SoarImportPath is the import path of the contract package, the one
// non-standard package a parser may import.
const SoarImportPath = "github.com/soarkafka/soarkafka/soar"

// Symbols holds the yaegi symbol tables of the module's own packages that a
// parser may import, keyed as yaegi expects ("<import path>/<package name>").
// It is filled by the generated soar_symbols.go; regenerate it with
// `go generate ./parsers/sandbox` when package soar's exported API changes
// (TestSoarSymbolsUpToDate fails until then).
var Symbols = map[string]map[string]reflect.Value{}

// allowedStdlib is the allow-list of standard library packages a parser may
// import: pure computation, nothing that reaches files, the network, the
// process or the runtime. Keys are import paths; values are the package
// names yaegi uses in its symbol keys. Never turn this into a deny-list:
// yaegi's stdlib table itself ("github.com/traefik/yaegi/stdlib/stdlib")
// re-exports every symbol, os included.
//
// hash/maphash is left out on purpose: its output changes with every
// process, so a parser using it would give different source data
// identifiers from one worker to the next.
var allowedStdlib = map[string]string{
	"bytes":           "bytes",
	"crypto/md5":      "md5",
	"crypto/sha256":   "sha256",
	"encoding/base64": "base64",
	"encoding/csv":    "csv",
	"encoding/hex":    "hex",
	"encoding/json":   "json",
	"errors":          "errors",
	"fmt":             "fmt",
	"hash":            "hash",
	"hash/adler32":    "adler32",
	"hash/crc32":      "crc32",
	"hash/crc64":      "crc64",
	"hash/fnv":        "fnv",
	"maps":            "maps",
	"math":            "math",
	"net/netip":       "netip",
	"net/url":         "url",
	"regexp":          "regexp",
	"slices":          "slices",
	"sort":            "sort",
	"strconv":         "strconv",
	"strings":         "strings",
	"time":            "time",
	"unicode":         "unicode",
	"unicode/utf16":   "utf16",
	"unicode/utf8":    "utf8",
}

// AllowedImports returns the import paths a parser may use, sorted: the
// allow-listed standard library packages and SoarImportPath.
func AllowedImports() []string {
	out := make([]string, 0, len(allowedStdlib)+1)
	for p := range allowedStdlib {
		out = append(out, p)
	}
	out = append(out, SoarImportPath)
	sort.Strings(out)
	return out
}

// symbolKey is the key of an import path in yaegi's symbol tables.
func symbolKey(path, name string) string { return path + "/" + name }

// importSymbols returns the symbol table of an allowed import path, or nil.
func importSymbols(path string) map[string]reflect.Value {
	if path == SoarImportPath {
		return Symbols[symbolKey(SoarImportPath, "soar")]
	}
	name, ok := allowedStdlib[path]
	if !ok {
		return nil
	}
	return withoutRefused(path, stdlib.Symbols[symbolKey(path, name)])
}

// refusedSymbols are symbols of allow-listed packages that a parser may not
// use, with the reason Check gives; the interpreter is not given them
// either. time.AfterFunc runs script code on a goroutine of its own, which
// a go statement check does not see and which could fire long after the
// call (the worker's check for leftover goroutines runs at its end).
var refusedSymbols = map[string]map[string]string{
	"time": {"AfterFunc": "time.AfterFunc is refused: it runs a function on a goroutine of its own, which could outlive the call; parsers cannot start goroutines"},
}

// withoutRefused returns syms without the refused symbols of path.
func withoutRefused(path string, syms map[string]reflect.Value) map[string]reflect.Value {
	refused := refusedSymbols[path]
	if len(refused) == 0 {
		return syms
	}
	out := make(map[string]reflect.Value, len(syms))
	for k, v := range syms {
		if _, no := refused[k]; !no {
			out[k] = v
		}
	}
	return out
}

// interpreterSymbols is what a worker gives to interp.Use: the allow-listed
// tables picked by key, the soar package, and yaegi's "." entry (the
// MapTypes that let fmt and encoding/json see interpreted values).
func interpreterSymbols() map[string]map[string]reflect.Value {
	out := make(map[string]map[string]reflect.Value, len(allowedStdlib)+2)
	for path, name := range allowedStdlib {
		out[symbolKey(path, name)] = withoutRefused(path, stdlib.Symbols[symbolKey(path, name)])
	}
	out["."] = stdlib.Symbols["."]
	k := symbolKey(SoarImportPath, "soar")
	out[k] = Symbols[k]
	return out
}

// ResultOptions are the JSON options results are encoded with, in the
// worker and natively alike, so both paths give the same bytes:
// deterministic; invalid UTF-8 in a string replaced (a binary message value
// copied into a field must not fail the batch); and json.Number, which
// soar.JSON decodes numbers into, written as the number it holds (JSON v2
// would write it as a string).
func ResultOptions() jsonv2.Options {
	return jsonv2.JoinOptions(
		jsonv2.Deterministic(true),
		jsontext.AllowInvalidUTF8(true),
		jsonv2.WithMarshalers(jsonv2.MarshalToFunc(func(enc *jsontext.Encoder, n json.Number) error {
			if n == "" {
				return enc.WriteToken(jsontext.Int(0))
			}
			if !jsontext.Value(n).IsValid() || jsontext.Value(n).Kind() != '0' {
				return fmt.Errorf("json.Number %q is not a number", string(n))
			}
			return enc.WriteValue(jsontext.Value(n))
		})),
	)
}
