// Command tlstap captures TLS plaintext from running programs with eBPF
// uprobes and delivers it as structured events. See README.md.
package main

import (
	"os"

	"github.com/tlstap/tlstap/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
