// Package config is tlstap's one configuration model, shared by command-line
// flags, the --config file and the /api/v1/config endpoint.
//
// Precedence, lowest first: built-in defaults, the --config file, then flags
// given explicitly on the command line; the API then replaces (Parse) or
// merge-patches (Patch, RFC 7396) the running configuration as a whole.
//
// Validate reports every invalid field by JSON path. CheckUpdate adds the
// rule for changes requested from outside: a new file sink must lie inside
// the state directory, so no request can make tlstap, running as root,
// write an arbitrary file. Diff lists what a change changes, for the log.
// See docs/config.md.
package config
