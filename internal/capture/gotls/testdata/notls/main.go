// Command notls is a Go program without crypto/tls.
package main

import "os"

func main() { os.Stdout.WriteString("hello\n") }
