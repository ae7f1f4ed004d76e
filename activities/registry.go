package activities

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// Registry holds the activities a worker can run, by name. It is safe for concurrent
// use.
type Registry struct {
	mu         sync.RWMutex
	activities map[string]*Activity
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{activities: make(map[string]*Activity)}
}

var (
	contextType = reflect.TypeFor[context.Context]()
	errorType   = reflect.TypeFor[error]()
)

// Register adds a Go function as the activity name. fn must look like
//
//	func(ctx context.Context, a A, b B, ...) (T, error)
//	func(ctx context.Context, a A, b B, ...) error
//
// and may be variadic. Its parameters must be decodable from JSON and T encodable to
// JSON. fn may also be an *HTTPEndpoint (see HTTPActivity), which makes an HTTP
// activity. Register fails if the name is empty or taken, fn is nil or not such a
// function or endpoint, or the options are invalid.
func (r *Registry) Register(name string, fn any, opts ...Option) error {
	if err := checkName(name, false); err != nil {
		return fmt.Errorf("registering activity %q: %w", name, err)
	}
	a := &Activity{Name: name, Options: NewOptions(opts...)}
	bind := func() error { return a.bindFunc(fn) }
	if h, ok := fn.(*HTTPEndpoint); ok {
		bind = func() error { return a.bindHTTP(h) }
	}
	if err := bind(); err != nil {
		return fmt.Errorf("registering activity %q: %w", name, err)
	}
	return r.add(a)
}

// MustRegister is Register that panics on error, for program initialisation.
func (r *Registry) MustRegister(name string, fn any, opts ...Option) {
	if err := r.Register(name, fn, opts...); err != nil {
		panic(err)
	}
}

// RegisterCommand adds a command activity from a spec "NAME=COMMAND", where COMMAND is
// the path of an executable optionally followed by arguments, split like a shell
// would (single quotes, double quotes and backslashes are understood; nothing is
// expanded). NAME must match [A-Za-z_][A-Za-z0-9_.-]*. The executable is looked up
// when the activity runs, not now. See the package documentation for the protocol.
func (r *Registry) RegisterCommand(spec string, opts ...Option) error {
	name, command, ok := strings.Cut(spec, "=")
	if !ok {
		return fmt.Errorf("activity spec %q: want NAME=COMMAND (missing '=')", spec)
	}
	name, command = strings.TrimSpace(name), strings.TrimSpace(command)
	if err := checkName(name, true); err != nil {
		return fmt.Errorf("activity spec %q: %w", spec, err)
	}
	if command == "" {
		return fmt.Errorf("activity spec %q: empty command after '='", spec)
	}
	argv, err := SplitCommand(command)
	if err != nil {
		return fmt.Errorf("activity spec %q: %w", spec, err)
	}
	if len(argv) == 0 || argv[0] == "" {
		return fmt.Errorf("activity spec %q: empty command after '='", spec)
	}
	a := &Activity{Name: name, Options: NewOptions(opts...), command: argv}
	return r.add(a)
}

func (r *Registry) add(a *Activity) error {
	if err := a.Options.Validate(); err != nil {
		return fmt.Errorf("registering activity %q: %w", a.Name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.activities == nil {
		r.activities = make(map[string]*Activity)
	}
	if _, dup := r.activities[a.Name]; dup {
		return fmt.Errorf("registering activity %q: an activity with that name is already registered", a.Name)
	}
	r.activities[a.Name] = a
	return nil
}

// Lookup returns the activity registered as name. The result is a copy: changing it
// does not change the registry.
func (r *Registry) Lookup(name string) (*Activity, bool) {
	r.mu.RLock()
	a, ok := r.activities[name]
	r.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return a.clone(), true
}

// Get is Lookup returning a non-retryable *Error of type "UnknownActivity" that names
// the registered activities when name is unknown.
func (r *Registry) Get(name string) (*Activity, error) {
	if a, ok := r.Lookup(name); ok {
		return a, nil
	}
	names := r.Names()
	known := "no activities are registered"
	if len(names) > 0 {
		known = "registered: " + strings.Join(names, ", ")
	}
	return nil, &Error{
		Type:         TypeUnknownActivity,
		Message:      fmt.Sprintf("unknown activity %q (%s)", name, known),
		NonRetryable: true,
	}
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	names := make([]string, 0, len(r.activities))
	for n := range r.activities {
		names = append(names, n)
	}
	r.mu.RUnlock()
	slices.Sort(names)
	return names
}

// checkName validates an activity name. Command names (strict) must be identifiers
// [A-Za-z_][A-Za-z0-9_.-]*; Go activity names must be non-empty without spaces or
// control characters.
func checkName(name string, strict bool) error {
	if name == "" {
		return fmt.Errorf("empty activity name")
	}
	if strict {
		for i, c := range name {
			ok := c == '_' || c < unicode.MaxASCII && unicode.IsLetter(c) ||
				i > 0 && (c < unicode.MaxASCII && unicode.IsDigit(c) || c == '.' || c == '-')
			if !ok {
				return fmt.Errorf("activity name %q is not valid: use letters, digits, '_', '.' and '-', starting with a letter or '_'", name)
			}
		}
		return nil
	}
	for _, c := range name {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return fmt.Errorf("activity name %q must not contain spaces or control characters", name)
		}
	}
	return nil
}
