package activities

import (
	"encoding/json"
	"fmt"
	"time"
)

// Options configure an activity. Registration sets them; a workflow call may override
// some of them (see Merge).
type Options struct {
	Retry            *RetryPolicy  // nil: DefaultRetryPolicy (no retries)
	Timeout          time.Duration // per attempt; 0 = none
	HeartbeatTimeout time.Duration // an attempt silent for longer is considered lost; 0 = none
	Cached           bool          // reuse a previous result for the same name, version and arguments
	CacheTTL         time.Duration // how long a cached result is reused; 0 = forever
	Version          string        // part of the cache key; bump it when the result changes meaning
	MaxConcurrent    int           // attempts running at once across all workers; 0 = unlimited
	PassEnv          []string      // command activities: variables passed through despite the clean environment
}

// Option sets one field of Options.
type Option func(*Options)

// WithRetry sets the retry policy.
func WithRetry(p RetryPolicy) Option {
	return func(o *Options) { o.Retry = &p }
}

// WithTimeout limits each attempt to d (0 = no limit). An attempt that runs longer
// fails with an *Error of type "timeout".
func WithTimeout(d time.Duration) Option {
	return func(o *Options) { o.Timeout = d }
}

// WithHeartbeatTimeout sets the longest an attempt may go without calling Heartbeat.
func WithHeartbeatTimeout(d time.Duration) Option {
	return func(o *Options) { o.HeartbeatTimeout = d }
}

// WithCache caches results for ttl (0 = forever).
func WithCache(ttl time.Duration) Option {
	return func(o *Options) { o.Cached, o.CacheTTL = true, ttl }
}

// WithVersion sets the activity version (part of the cache key).
func WithVersion(v string) Option {
	return func(o *Options) { o.Version = v }
}

// WithMaxConcurrent limits how many attempts of the activity run at once, across every
// worker claiming from the same database (workers must register the same limit).
func WithMaxConcurrent(n int) Option {
	return func(o *Options) { o.MaxConcurrent = n }
}

// NewOptions applies opts to zero Options.
func NewOptions(opts ...Option) Options {
	var o Options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// RetryPolicy is the effective retry policy: Retry, or DefaultRetryPolicy when nil.
func (o Options) RetryPolicy() RetryPolicy {
	if o.Retry == nil {
		return DefaultRetryPolicy()
	}
	return *o.Retry
}

// Merge returns o overridden by the fields set in override: a non-nil Retry, non-zero
// durations, Version and MaxConcurrent, and Cached when true. A workflow's per-call
// options are merged this way over the registered ones. The result shares no memory
// with o or override.
func (o Options) Merge(override Options) Options {
	if override.Retry != nil {
		o.Retry = override.Retry
	}
	if o.Retry != nil {
		p := *o.Retry
		p.NonRetryable = append([]string(nil), p.NonRetryable...)
		o.Retry = &p
	}
	if override.Timeout != 0 {
		o.Timeout = override.Timeout
	}
	if override.HeartbeatTimeout != 0 {
		o.HeartbeatTimeout = override.HeartbeatTimeout
	}
	if override.Cached {
		o.Cached = true
	}
	if override.CacheTTL != 0 {
		o.CacheTTL = override.CacheTTL
	}
	if override.Version != "" {
		o.Version = override.Version
	}
	if override.MaxConcurrent != 0 {
		o.MaxConcurrent = override.MaxConcurrent
	}
	return o
}

// Validate reports the first option that makes no sense.
func (o Options) Validate() error {
	switch {
	case o.Timeout < 0:
		return fmt.Errorf("timeout must be >= 0, got %s", o.Timeout)
	case o.HeartbeatTimeout < 0:
		return fmt.Errorf("heartbeat timeout must be >= 0, got %s", o.HeartbeatTimeout)
	case o.CacheTTL < 0:
		return fmt.Errorf("cache TTL must be >= 0, got %s", o.CacheTTL)
	case o.MaxConcurrent < 0:
		return fmt.Errorf("max concurrent must be >= 0, got %d", o.MaxConcurrent)
	}
	if o.Retry != nil {
		return o.Retry.Validate()
	}
	return nil
}

type optionsJSON struct {
	Retry            *RetryPolicy `json:"retry,omitempty"`
	Timeout          jsonDuration `json:"timeout,omitempty"`
	HeartbeatTimeout jsonDuration `json:"heartbeat_timeout,omitempty"`
	Cached           bool         `json:"cached,omitempty"`
	CacheTTL         jsonDuration `json:"cache_ttl,omitempty"`
	Version          string       `json:"version,omitempty"`
	MaxConcurrent    int          `json:"max_concurrent,omitempty"`
}

// MarshalJSON encodes the options with snake_case keys, omitting unset fields, and
// durations as strings.
func (o Options) MarshalJSON() ([]byte, error) {
	return json.Marshal(optionsJSON{
		Retry:            o.Retry,
		Timeout:          jsonDuration(o.Timeout),
		HeartbeatTimeout: jsonDuration(o.HeartbeatTimeout),
		Cached:           o.Cached,
		CacheTTL:         jsonDuration(o.CacheTTL),
		Version:          o.Version,
		MaxConcurrent:    o.MaxConcurrent,
	})
}

// UnmarshalJSON decodes what MarshalJSON writes; durations may also be numbers of
// seconds.
func (o *Options) UnmarshalJSON(data []byte) error {
	var v optionsJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("activity options: %w", err)
	}
	*o = Options{
		Retry:            v.Retry,
		Timeout:          time.Duration(v.Timeout),
		HeartbeatTimeout: time.Duration(v.HeartbeatTimeout),
		Cached:           v.Cached,
		CacheTTL:         time.Duration(v.CacheTTL),
		Version:          v.Version,
		MaxConcurrent:    v.MaxConcurrent,
	}
	return nil
}
