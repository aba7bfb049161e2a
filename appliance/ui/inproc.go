package ui

import (
	"io"
	"net/http"
	"sync"
)

// handlerTransport sends requests to an http.Handler in this process: the
// dashboard is a client of the API, through its authentication and access
// policies like any other, without a network hop and without a TLS
// identity of its own (a request from here carries only the signed-in
// person's token). The answer streams, as a followed log must.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	in := req.Clone(req.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "dashboard"
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, body: pw, ready: make(chan struct{})}
	go func() {
		defer pw.Close()
		defer w.WriteHeader(http.StatusOK) // a handler that wrote nothing answered 200
		t.h.ServeHTTP(w, in)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		// The handler's writes fail from now on, so it ends.
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	return &http.Response{StatusCode: w.code, Status: http.StatusText(w.code), Header: w.sent, Body: pr, Request: req,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, ContentLength: -1}, nil
}

// pipeWriter is the handler's side of a handlerTransport answer: headers
// once, then the body through a pipe the caller reads as it is written.
type pipeWriter struct {
	header http.Header
	once   sync.Once
	ready  chan struct{}
	code   int
	sent   http.Header
	body   *io.PipeWriter
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	w.once.Do(func() {
		w.code, w.sent = code, w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// Flush has nothing to do: each write reaches the reader as it is made.
func (w *pipeWriter) Flush() {}
