package auth

// ValidID reports whether id has the form of a token ID ([a-z0-9]{6}), so
// that the API can refuse anything else before it reaches a table or a log.
func ValidID(id string) bool { return len(id) == idLen && inAlphabet(id) }
