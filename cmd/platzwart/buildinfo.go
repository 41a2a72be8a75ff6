package main

import (
	"runtime"
	"runtime/debug"
)

// helmVersion is the version of the Helm SDK module linked into the binary.
func helmVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "helm.sh/helm/v3" {
				return d.Version
			}
		}
	}
	return "unknown"
}

// goVersion is the Go release the binary was built with.
func goVersion() string { return runtime.Version() }
