// Command tlsprog links crypto/tls's client for the tests to inspect.
package main

import (
	"crypto/tls"
	"os"
)

func main() {
	c, err := tls.Dial("tcp", os.Args[1], nil)
	if err != nil {
		os.Exit(1)
	}
	c.Write([]byte("x"))
	c.Read(make([]byte, 1))
}
