// Package config is tlstap's one configuration model, shared by command-line
// flags, the --config file and the /api/v1/config endpoint.
//
// Precedence, lowest first: built-in defaults, the --config file, then flags
// given explicitly on the command line; the API then replaces (Parse) or
// merge-patches (Patch, RFC 7396) the running configuration as a whole.
//
// Validate reports every invalid field by JSON path; it is the one check of
// settings, whether they come from flags, the file or the API. Config.Run
// holds the settings a run starts with and keeps, which only flags set.
// CheckUpdate adds the rule for changes requested from outside: a new file
// sink must lie inside the state directory, so no request can make tlstap,
// running as root, write an arbitrary file. Diff lists what a change changes, for the log.
//
// Package config depends on no package downstream of it but forward's
// filter syntax (until the one filter model owns it): it lists the formats
// and modes the consumers accept itself, and package fleet registers the
// nats:// address syntax (RegisterNATS). See docs/config.md.
package config
