//go:build tools

// Package tools records the weed command as a dependency so that
// "go build github.com/seaweedfs/seaweedfs/weed" works from this module.
package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
