// Command rclone is rclone v1.76.0 with what the backup and restore Jobs use: the s3
// and local backends, the copyto command (and mkdir, which the tests create buckets
// with), built from rclone's own packages
// exactly as its rclone.go builds the full binary (cmd.Main), without the other
// backends and commands, which take most of the build time.
package main

import (
	_ "github.com/rclone/rclone/backend/local"
	_ "github.com/rclone/rclone/backend/s3"
	"github.com/rclone/rclone/cmd"
	_ "github.com/rclone/rclone/cmd/copyto"
	_ "github.com/rclone/rclone/cmd/mkdir"
	_ "github.com/rclone/rclone/cmd/version"
)

func main() {
	cmd.Main()
}
