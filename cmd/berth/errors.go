package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth/berth/appliance/api"
)

// explain says what went wrong as a sentence: an API error by what its
// status means to the user, a master that cannot be reached as such,
// rather than the raw status line or transport error.
func explain(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		msg := ae.Message
		switch c := ae.Code; {
		case c == http.StatusUnauthorized:
			return "the master refused the token (revoked, expired or mistyped? see --config): " + msg
		case c == http.StatusForbidden:
			return "the token is not allowed to do this (a read-only token?): " + msg
		case c == http.StatusNotFound:
			return msg
		case c == http.StatusBadRequest || c == http.StatusConflict:
			return "the master refused the request: " + msg
		case c == http.StatusRequestEntityTooLarge:
			return "the request is too large: " + msg
		case c == http.StatusTooManyRequests:
			return "the master is busy; try again shortly: " + msg
		case c == http.StatusServiceUnavailable:
			return "the masters cannot do this now (no leader elected, or it is changing); try again shortly: " + msg
		case c >= 500:
			return "the master failed to answer: " + msg
		}
		return fmt.Sprintf("the master answered %d (%s): %s", ae.Code, strings.ToLower(http.StatusText(ae.Code)), msg)
	}
	var unknownCA x509.UnknownAuthorityError
	if errors.As(err, &unknownCA) {
		return "the master's certificate is not signed by the CA in the client config: is the config for this cluster? (" + err.Error() + ")"
	}
	// The client tries each master in turn: one line per master.
	var reach []string
	for _, e := range flatten(err) {
		var ue *url.Error
		if !errors.As(e, &ue) {
			return err.Error()
		}
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		reach = append(reach, host+": "+innermost(ue.Err).Error())
	}
	if len(reach) > 0 {
		return "cannot reach the masters (" + strings.Join(reach, "; ") + ")"
	}
	return err.Error()
}

// flatten lists the errors of errors.Join, or err alone.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// innermost is the last error of a chain: "connection refused" rather
// than "dial tcp 10.0.0.1:7443: connect: connection refused".
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
