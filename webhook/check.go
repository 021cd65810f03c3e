package webhook

// Check reports whether Run would accept d's fields: nil, or an error
// wrapping ErrInvalidConfig or ErrInvalidEndpoint, the one Run would
// return. An application that builds a Dispatcher from its configuration
// calls it at start-up, before anything is appended.
func (d *Dispatcher) Check() error {
	_, err := d.config()
	return err
}
