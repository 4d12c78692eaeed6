package casebook

// Observer is told what each AddUpdate did, so that an adapter can count it (the
// Prometheus metrics) without the domain knowing how. Calls come from every channel's
// goroutine at once; an Observer must be safe for that and must not block.
type Observer interface {
	// ObserveUpdate reports one AddUpdate call: its outcome when err is nil, else the
	// error it returned.
	ObserveUpdate(source Source, o Outcome, err error)
}

// observe reports to the configured Observer, if any.
func (s *Service) observe(source Source, o Outcome, err error) {
	if s.opt.Observer != nil {
		s.opt.Observer.ObserveUpdate(source, o, err)
	}
}
