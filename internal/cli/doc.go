// Package cli implements tlstap's command line: one cobra command per
// subcommand. The run commands (tls, replay, demo) differ only in their
// source: their flags are one table (flagTable, flags.go) mapped onto a
// config.Config and judged by config.Validate, and one function, run
// (run.go), wires every run top to bottom. docs/architecture.md's
// "Wiring" section walks through it.
package cli
