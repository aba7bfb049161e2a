package dns

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

const (
	upstreamTimeout  = 2 * time.Second
	maxCacheTTL      = 30 * time.Second // of an answer, however long its records live
	maxNegativeTTL   = 5 * time.Second  // of NXDOMAIN and NODATA, by the SOA minimum (RFC 2308)
	defaultCacheSize = 10000
)

// forwarder resolves names outside the cluster through the upstreams and
// caches the answers.
type forwarder struct {
	upstreams []string
	cache     *lru.Cache[cacheKey, *cached]
	flight    singleflight.Group // one upstream query per name at a time
	log       *slog.Logger
	now       func() time.Time
	// exchange asks one upstream; tests replace it.
	exchange func(q *dns.Msg, upstream string) (*dns.Msg, error)
}

type cacheKey struct {
	name          string // lower case
	qtype, qclass uint16
}

// cached is an upstream's reply, kept until expires; it is never changed,
// replies copy its records with the TTL that is left.
type cached struct {
	msg     *dns.Msg // without OPT
	expires time.Time
	// aged is the copy with the TTL last given out: the replies of one
	// second share it, read-only, rather than copy the records each.
	aged atomic.Pointer[aged]
}

type aged struct {
	ttl               uint32
	answer, ns, extra []dns.RR
}

func newForwarder(upstreams []string, size int, log *slog.Logger) (*forwarder, error) {
	f := &forwarder{log: log, now: time.Now, exchange: exchange}
	for _, u := range upstreams {
		if ip, err := netip.ParseAddr(u); err == nil {
			u = net.JoinHostPort(ip.String(), "53")
		}
		if _, _, err := net.SplitHostPort(u); err != nil {
			return nil, fmt.Errorf("dns: upstream %q: %w", u, err)
		}
		f.upstreams = append(f.upstreams, u)
	}
	if size <= 0 {
		size = defaultCacheSize
	}
	f.cache, _ = lru.New[cacheKey, *cached](size) // fails only for size <= 0
	return f, nil
}

var errNoAnswer = errors.New("no upstream answered")

// forward fills m, the reply to r, with the upstreams' answer for name
// (r's question, lower-cased): from the cache when it has it, else asked
// if r wants recursion (every stub resolver does), else REFUSED. Asking
// blocks: unless it may, forward returns false and leaves m alone.
func (f *forwarder) forward(m, r *dns.Msg, name string, block bool) bool {
	q := r.Question[0]
	key := cacheKey{name, q.Qtype, q.Qclass}
	// An expired entry stays until a fresh one replaces it: removing it
	// here could remove that fresh one.
	if c, ok := f.cache.Get(key); ok {
		if ttl := c.expires.Sub(f.now()) / time.Second; ttl > 0 {
			c.fill(m, uint32(ttl))
			return true
		}
	}
	if !r.RecursionDesired {
		m.Rcode = dns.RcodeRefused
		return true
	}
	if !block {
		return false
	}
	v, err, _ := f.flight.Do(name+"/"+strconv.Itoa(int(q.Qtype))+"/"+strconv.Itoa(int(q.Qclass)), func() (any, error) {
		resp, err := f.ask(key)
		if err != nil {
			return nil, err
		}
		c := &cached{msg: resp}
		if ttl := cacheTTL(resp); ttl > 0 {
			c.expires = f.now().Add(ttl)
			f.cache.Add(key, c)
		}
		return c, nil
	})
	if err != nil {
		f.log.Debug("dns: forwarding", "name", name, "type", dns.TypeToString[q.Qtype], "err", err)
		m.Rcode = dns.RcodeServerFailure
		return true
	}
	c := v.(*cached)
	if c.expires.IsZero() {
		c.fill(m, 0) // not cacheable: as the upstream sent it
	} else {
		c.fill(m, uint32(max(c.expires.Sub(f.now())/time.Second, 1)))
	}
	return true
}

// fill copies the cached reply into m. With ttl > 0, every record gets it,
// as CoreDNS's cache does, so clients keep nothing longer than we do.
func (c *cached) fill(m *dns.Msg, ttl uint32) {
	m.Rcode = c.msg.Rcode
	m.AuthenticatedData = c.msg.AuthenticatedData
	a := c.aged.Load()
	if a == nil || a.ttl != ttl {
		a = &aged{ttl, withTTL(c.msg.Answer, ttl), withTTL(c.msg.Ns, ttl), withTTL(c.msg.Extra, ttl)}
		c.aged.Store(a)
	}
	m.Answer, m.Ns, m.Extra = a.answer, a.ns, a.extra
}

func withTTL(rrs []dns.RR, ttl uint32) []dns.RR {
	if ttl == 0 || len(rrs) == 0 {
		return rrs
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
		out[i].Header().Ttl = ttl
	}
	return out
}

// ask sends the query for key to each upstream in turn until one answers
// with neither SERVFAIL nor REFUSED.
func (f *forwarder) ask(key cacheKey) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(key.name, key.qtype)
	q.Question[0].Qclass = key.qclass
	q.SetEdns0(maxUDPSize, false)
	errs := []error{errNoAnswer}
	for _, u := range f.upstreams {
		q.Id = dns.Id()
		resp, err := f.exchange(q, u)
		switch {
		case err != nil:
		case len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, key.name) ||
			resp.Question[0].Qtype != key.qtype || resp.Question[0].Qclass != key.qclass:
			err = errors.New("reply to another question")
		case resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused:
			err = errors.New(dns.RcodeToString[resp.Rcode])
		default:
			resp.Extra = withoutOPT(resp.Extra)
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	return nil, errors.Join(errs...)
}

// exchange asks upstream over UDP, and over TCP when the reply was
// truncated.
func exchange(q *dns.Msg, upstream string) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: upstreamTimeout, UDPSize: maxUDPSize}
	resp, _, err := c.Exchange(q, upstream)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.Exchange(q, upstream)
	}
	return resp, err
}

func withoutOPT(rrs []dns.RR) []dns.RR {
	out := rrs[:0:0]
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// cacheTTL is how long resp may be cached: the least TTL of its records
// up to maxCacheTTL; for NXDOMAIN and NODATA the SOA's negative TTL up to
// maxNegativeTTL; 0 for what must not be cached.
func cacheTTL(resp *dns.Msg) time.Duration {
	if resp.Truncated || resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return 0
	}
	if resp.Rcode == dns.RcodeSuccess && len(resp.Answer) > 0 {
		ttl := maxCacheTTL
		for _, sec := range [][]dns.RR{resp.Answer, resp.Ns, resp.Extra} {
			for _, rr := range sec {
				ttl = min(ttl, time.Duration(rr.Header().Ttl)*time.Second)
			}
		}
		return ttl
	}
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(maxNegativeTTL, time.Duration(min(soa.Hdr.Ttl, soa.Minttl))*time.Second)
		}
	}
	return 0 // a negative answer without SOA says nothing of how long it holds
}
