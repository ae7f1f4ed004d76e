package backend

import (
	"context"
	"fmt"
	"sort"
)

// TagsName is the name of the side_effect event set_tags() records; its data is the
// JSON object of the tags it set. The stores copy those tags into their tag index
// (execution_tags) in the transaction that appends the event.
const TagsName = "set_tags"

// Bounds of an execution's tags.
const (
	MaxTags     = 16  // tags per execution
	MaxTagBytes = 128 // bytes of a tag's key, and of its value
)

// CheckTags checks tags against the bounds: at most MaxTags, each key non-empty and
// key and value at most MaxTagBytes. The error names the first offending key.
func CheckTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return fmt.Errorf("%d tags, over the limit of %d", len(tags), MaxTags)
	}
	for _, k := range SortedTagKeys(tags) {
		if err := CheckTag(k, tags[k]); err != nil {
			return err
		}
	}
	return nil
}

// CheckTag checks one tag against the bounds.
func CheckTag(key, value string) error {
	switch {
	case key == "":
		return fmt.Errorf("a tag key is empty")
	case len(key) > MaxTagBytes:
		return fmt.Errorf("tag key %.20q… is %d bytes, over the limit of %d", key, len(key), MaxTagBytes)
	case len(value) > MaxTagBytes:
		return fmt.Errorf("the value of tag %q is %d bytes, over the limit of %d", key, len(value), MaxTagBytes)
	}
	return nil
}

// Tagger is an optional extension of Backend, implemented by both stores: the tags of
// an execution (ListFilter.Tags lists by them).
type Tagger interface {
	// ExecutionTags returns the tags of an execution (empty when it has none or does
	// not exist).
	ExecutionTags(ctx context.Context, id string) (map[string]string, error)
}

// TagLister is an optional extension of Backend, implemented by both stores: the tags
// of many executions in one read (the web view's list rows).
type TagLister interface {
	// TagsOf returns the tags of each of ids that has any, by execution ID.
	TagsOf(ctx context.Context, ids []string) (map[string]map[string]string, error)
}

// ScanTagsOf reads rows of (execution_id, key, value) into tags by execution.
func ScanTagsOf(rows Rows) ([]map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	_, err := CollectRows(rows, func(s Scanner) (struct{}, error) {
		var id, k, v string
		if err := s.Scan(&id, &k, &v); err != nil {
			return struct{}{}, err
		}
		if out[id] == nil {
			out[id] = map[string]string{}
		}
		out[id][k] = v
		return struct{}{}, nil
	})
	if err != nil {
		return nil, err
	}
	return []map[string]map[string]string{out}, nil
}

// SortedTagKeys returns the keys of tags in order, for statements built the same way
// every time.
func SortedTagKeys(tags map[string]string) []string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ScanTags reads rows of (key, value) into a map.
func ScanTags(rows Rows) ([]map[string]string, error) {
	tags := map[string]string{}
	_, err := CollectRows(rows, func(s Scanner) (struct{}, error) {
		var k, v string
		if err := s.Scan(&k, &v); err != nil {
			return struct{}{}, err
		}
		tags[k] = v
		return struct{}{}, nil
	})
	if err != nil {
		return nil, err
	}
	return []map[string]string{tags}, nil
}
