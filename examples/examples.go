// Package examples embeds the example config repositories, so that
// `berth up` can start a new user off with one without a checkout.
package examples

import "embed"

// FS holds hello/ and cue-app/.
//
//go:embed hello cue-app
var FS embed.FS
