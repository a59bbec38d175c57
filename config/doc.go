// Package config is tlstap's one configuration model, shared by command-line
// flags, the --config file and the /api/v1/config endpoint.
//
// Precedence, lowest first: built-in defaults, the --config file, then flags
// given explicitly on the command line; the API then replaces or patches the
// running configuration as a whole.
package config
