// Package cli implements tlstap's command line: one cobra command per
// subcommand, each a thin layer that turns flags into a config.Config and
// hands it to the engine.
package cli
