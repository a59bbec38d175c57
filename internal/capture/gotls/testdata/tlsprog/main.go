// Command tlsprog links crypto/tls's client and server for the tests to
// inspect. Run with "vers" it prints the offset of tls.Conn's vers field as
// its toolchain laid it out.
package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"reflect"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "vers" {
		f, ok := reflect.TypeOf(tls.Conn{}).FieldByName("vers")
		if !ok || f.Type.Kind() != reflect.Uint16 {
			os.Exit(1)
		}
		fmt.Println(f.Offset)
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "server" {
		// Never run by the tests: links (*Conn).serverHandshake.
		_ = tls.Server(nil, &tls.Config{})
		return
	}
	c, err := tls.Dial("tcp", os.Args[1], nil)
	if err != nil {
		os.Exit(1)
	}
	c.Write([]byte("x"))
	c.Read(make([]byte, 1))
}
