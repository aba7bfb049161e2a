// Command api is the shop example's API (examples/shop): the items it
// keeps in Redis, as JSON. It finds Redis by the address in REDIS_ADDR (a
// Service name, redis:6379) and authenticates with REDIS_PASSWORD.
//
//	GET  /api/items   {"pod": "api-…", "items": [{"name": "…"}, …]}
//	POST /api/items   {"name": "…"} adds an item: 201
//	GET  /healthz     200 while the process serves (liveness)
//	GET  /readyz      200 when Redis answers PING, else 503 (readiness)
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/berth/berth/images/internal/serve"
)

// itemsKey is the Redis list the items are kept in, oldest first.
const itemsKey = "shop:items"

// maxName bounds an item's name, and so what one request can store.
const maxName = 200

type item struct {
	Name string `json:"name"`
}

type list struct {
	Pod   string `json:"pod"`
	Items []item `json:"items"`
}

func main() {
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		slog.Error("api: REDIS_ADDR is not set")
		os.Exit(1)
	}
	name := serve.PodName()
	serve.Run("api", newHandler(name, newPool(addr, os.Getenv("REDIS_PASSWORD"))), "name", name, "redis", addr)
}

// newPool dials addr afresh for each new connection, so the name is
// resolved again after Redis moves.
func newPool(addr, password string) *redis.Pool {
	return &redis.Pool{
		MaxIdle:     4,
		IdleTimeout: time.Minute,
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialContext(ctx, "tcp", addr, redis.DialPassword(password),
				redis.DialConnectTimeout(2*time.Second), redis.DialReadTimeout(2*time.Second), redis.DialWriteTimeout(2*time.Second))
		},
		// A connection idle for a while may have been cut (Redis restarted).
		TestOnBorrow: func(c redis.Conn, idle time.Time) error {
			if time.Since(idle) < 10*time.Second {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
	}
}

func newHandler(pod string, pool *redis.Pool) http.Handler {
	do := func(ctx context.Context, cmd string, args ...any) (any, error) {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		c, err := pool.GetContext(ctx)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return redis.DoContext(c, ctx, cmd, args...)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/items", func(w http.ResponseWriter, r *http.Request) {
		names, err := redis.Strings(do(r.Context(), "LRANGE", itemsKey, 0, -1))
		if err != nil {
			redisError(w, err)
			return
		}
		l := list{Pod: pod, Items: []item{}}
		for _, n := range names {
			l.Items = append(l.Items, item{Name: n})
		}
		writeJSON(w, http.StatusOK, l)
	})
	mux.HandleFunc("POST /api/items", func(w http.ResponseWriter, r *http.Request) {
		var it item
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&it); err != nil {
			http.Error(w, "want a JSON body {\"name\": \"…\"}: "+err.Error(), http.StatusBadRequest)
			return
		}
		it.Name = strings.TrimSpace(it.Name)
		if it.Name == "" || len(it.Name) > maxName {
			http.Error(w, fmt.Sprintf("an item's name has 1 to %d bytes", maxName), http.StatusBadRequest)
			return
		}
		if _, err := do(r.Context(), "RPUSH", itemsKey, it.Name); err != nil {
			redisError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, it)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := do(r.Context(), "PING"); err != nil {
			redisError(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// redisError answers 503: the API is up, its store is not (or refuses
// it: a wrong password says WRONGPASS here and in the log).
func redisError(w http.ResponseWriter, err error) {
	slog.Warn("api: redis", "err", err)
	http.Error(w, "redis: "+err.Error(), http.StatusServiceUnavailable)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
