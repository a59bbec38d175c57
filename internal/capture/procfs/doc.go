// Package procfs reads the parts of /proc that tlstap needs to find the
// libraries running processes have mapped.
//
// It reads text only and never follows what it reads: a path from
// /proc/PID/maps is meaningful in that process's mount namespace, so callers
// open it through /proc/PID/root (see MappedFile.HostPath).
package procfs
