// Command soarkafka is the server binary; everything it does lives in app.
package main

import (
	"context"
	"os"

	"github.com/soarkafka/soarkafka/app"
)

func main() {
	os.Exit(app.Main(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}
