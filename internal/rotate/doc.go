// Package rotate moves a full output file aside, under the one naming
// scheme every file output uses (the file sinks, the pcapng export):
// NAME-<UTC time>-<index>.EXT beside NAME.EXT, so that rotated files sort
// by name in the order they were written.
package rotate
