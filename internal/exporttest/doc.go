// Package exporttest checks exported captures with the tools people use
// on them, for tests only: pcapng files with tshark and capinfos, HAR
// files with a HAR 1.2 schema validator (har-validator, installed into
// validator/ by scripts/install-deps.sh), each compared with the events
// the same run produced.
package exporttest
