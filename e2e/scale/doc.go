// Package scale holds the scale benchmarks of a running `platzwart controller`
// process: N workplaces served from a Git repository on loopback, installed, left
// alone for no-op cycles, edited by hand (drift) and changed by one commit (converge),
// with the process's memory and CPU read from /proc and its profiles from pprof.
// Figures and how to run them: docs/benchmarks.md, "Scale: a running controller"
// (`make bench-scale WORKPLACES=100`). The package has benchmarks only; `go test`
// without -bench starts nothing.
package scale
