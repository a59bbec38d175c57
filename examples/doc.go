// Package examples holds client examples for tlstap's streaming server —
// python/, node/ and go/ — and the test that runs all three against the
// real server package and checks they print the same thing.
package examples
