package load

// Validate checks what a Workplace can be checked for without the catalog (names,
// domain, routing, registry). The controller runs it on Workplaces created in the
// cluster by other means than Git, so they get the checks and the messages that
// Workplaces read from a repository get.
func Validate(w *Workplace) error { return validate(w) }
