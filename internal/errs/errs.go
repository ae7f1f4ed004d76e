// Package errs holds the error types that every layer may hand back to a caller and
// that the root package re-exports: InputError, the caller's mistake. It imports
// nothing of Stent's, so any package may use it.
package errs

// InputError marks an error caused by what the caller passed (a script that does not
// compile, arguments that are not JSON, an unknown database scheme, an OTEL_* variable
// with a value Stent cannot use). The CLI exits 2.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }
