package engine

// ModulePath widens the directory tree that the script's load() statements may read
// from: dir instead of the script's own directory. The script must lie inside dir.
// Absolute paths, ".." that leaves the tree and symlinks pointing out of it are refused
// either way.
func ModulePath(dir string) DispatchOption {
	return func(c *dispatchConfig) { c.modulePath = dir }
}
