// Package gitops is berth's Git source: it keeps a clone of the config
// repository, fetches it on a poll interval or when triggered, and turns the
// tracked branch's newest commit into a state.Revision proposed to Raft.
//
// Git access is go-git only (no git binary at runtime: the appliance image
// has none). Local paths and file:// URLs are served by go-git's in-process
// upload-pack (see transport.go), http(s) by its smart HTTP client.
package gitops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// DefaultBranch is tracked when no branch is configured and the remote does
// not say which branch its HEAD names.
const DefaultBranch = "main"

const remoteName = "origin"

// Source is a bare clone of the config repository tracking one branch. It is
// safe for concurrent use; go-git's repository is not, so calls serialize.
type Source struct {
	url     string // as go-git takes it; may hold credentials
	display string // url without password, for logs and status
	dir     string
	branch  string // configured; empty means the remote HEAD's branch
	subPath string // slash-separated, cleaned; empty for the repo root
	auth    transport.AuthMethod
	log     *slog.Logger

	mu   sync.Mutex // guards repo and the clone on disk
	repo *git.Repository
	// resolved is the remote HEAD's branch once known. Atomic, not under
	// mu, so Status does not wait for a slow fetch.
	resolved atomic.Value // string
}

// SourceOption configures a Source.
type SourceOption func(*Source) error

// WithBranch tracks branch instead of the remote HEAD's branch.
func WithBranch(branch string) SourceOption {
	return func(s *Source) error {
		branch = strings.TrimPrefix(branch, "refs/heads/")
		if err := plumbing.NewBranchReferenceName(branch).Validate(); err != nil || branch == "" {
			return fmt.Errorf("invalid branch name %q", branch)
		}
		s.branch = branch
		return nil
	}
}

// WithPath loads only this directory of the repository (a path relative to
// its root). Diagnostics still name files relative to the repository root,
// so they match what the user sees in the repo.
func WithPath(p string) SourceOption {
	return func(s *Source) (err error) {
		s.subPath, err = cleanSubPath(p)
		return err
	}
}

// cleanSubPath is p slash-separated and cleaned, "" for the root; a path
// that leads outside the repository is an error.
func cleanSubPath(p string) (string, error) {
	p = filepath.ToSlash(p)
	c := path.Clean(strings.TrimPrefix(p, "/"))
	if c == "." {
		return "", nil
	}
	if strings.HasPrefix(p, "/") || !filepath.IsLocal(filepath.FromSlash(c)) {
		return "", fmt.Errorf("path %q: must be a directory inside the repository", p)
	}
	return c, nil
}

// WithAuth authenticates to an http(s) remote with basic auth. For a token,
// pass it as the password with any non-empty user name (GitHub takes
// "x-access-token", GitLab "oauth2"), which is what the git CLI does too.
func WithAuth(username, password string) SourceOption {
	return func(s *Source) error {
		s.auth = &githttp.BasicAuth{Username: username, Password: password}
		return nil
	}
}

// WithLogger sets the logger of the source and of syncers using it.
func WithLogger(l *slog.Logger) SourceOption {
	return func(s *Source) error {
		if l != nil {
			s.log = l
		}
		return nil
	}
}

// NewSource opens (or creates) the bare clone in dir for the repository at
// rawURL: a local path, a file:// URL or an http(s):// URL. It does not touch
// the network, so a master boots even while the remote is down; Fetch does.
func NewSource(rawURL, dir string, opts ...SourceOption) (*Source, error) {
	s := &Source{dir: dir, log: slog.Default()}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	var err error
	if s.url, s.display, err = normalizeURL(rawURL); err != nil {
		return nil, err
	}
	s.log = s.log.With("repo", s.display)
	if s.repo, err = openClone(dir, s.url); err != nil {
		return nil, fmt.Errorf("clone in %s: %w", dir, err)
	}
	return s, nil
}

// normalizeURL returns the URL go-git should use and one safe to show.
func normalizeURL(raw string) (use, display string, err error) {
	if raw == "" {
		return "", "", errors.New("no repository URL")
	}
	if !strings.Contains(raw, "://") {
		// A local path. go-git would also take user@host:path (scp-like ssh);
		// berth does not support ssh, so anything without a scheme is a path.
		abs, err := filepath.Abs(raw)
		if err != nil {
			return "", "", err
		}
		return abs, abs, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("repository URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return "", "", fmt.Errorf("repository URL %s: file URLs must name a local path", raw)
		}
		return "file://" + u.Path, "file://" + u.Path, nil
	case "http", "https":
		return raw, u.Redacted(), nil
	}
	return "", "", fmt.Errorf("repository URL %s: unsupported scheme %q (berth reads local paths, file://, http:// and https://)", u.Redacted(), u.Scheme)
}

func openClone(dir, remoteURL string) (*git.Repository, error) {
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		repo, err = git.PlainInit(dir, true)
	}
	if err != nil {
		return nil, err
	}
	cfg, err := repo.Config()
	if err != nil {
		return nil, err
	}
	// The URL may have changed since the clone was made (new credentials,
	// mirror moved): keep the objects, point the remote at the new URL.
	rc := cfg.Remotes[remoteName]
	if rc == nil || len(rc.URLs) != 1 || rc.URLs[0] != remoteURL {
		cfg.Remotes[remoteName] = &config.RemoteConfig{Name: remoteName, URLs: []string{remoteURL},
			Fetch: []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*"}}
		if err := repo.SetConfig(cfg); err != nil {
			return nil, err
		}
	}
	return repo, nil
}

// URL is the repository URL without any password.
func (s *Source) URL() string { return s.display }

// Path is the sub-path loaded, "" for the repository root.
func (s *Source) Path() string { return s.subPath }

// Branch is the tracked branch, "" until the remote HEAD has been resolved.
func (s *Source) Branch() string {
	if s.branch != "" {
		return s.branch
	}
	b, _ := s.resolved.Load().(string)
	return b
}

// Fetch brings the clone up to date with the tracked branch and returns the
// branch's head commit. Only new objects travel. A force-pushed branch simply
// moves (the refspec is forced); on error the clone keeps what it had.
func (s *Source) Fetch(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	branch, err := s.branchLocked(ctx)
	if err != nil {
		return "", err
	}
	remote, err := s.repo.Remote(remoteName)
	if err != nil {
		return "", err
	}
	local := plumbing.NewRemoteReferenceName(remoteName, branch)
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", plumbing.NewBranchReferenceName(branch), local))
	err = remote.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{spec},
		Auth:       s.auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	switch {
	case err == nil || errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, git.NoMatchingRefSpecError{}):
		if s.branch == "" {
			s.resolved.Store("") // the remote's default branch may have been renamed; ask again next time
		}
		return "", fmt.Errorf("fetch %s: branch %q not found", s.display, branch)
	default:
		return "", fmt.Errorf("fetch %s (branch %s): %w", s.display, branch, err)
	}
	ref, err := s.repo.Reference(local, true)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %s after fetch: %w", s.display, local, err)
	}
	return ref.Hash().String(), nil
}

// branchLocked returns the tracked branch, asking the remote for its HEAD
// the first time when none is configured, as git clone does.
func (s *Source) branchLocked(ctx context.Context) (string, error) {
	if s.branch != "" {
		return s.branch, nil
	}
	if b, _ := s.resolved.Load().(string); b != "" {
		return b, nil
	}
	remote, err := s.repo.Remote(remoteName)
	if err != nil {
		return "", err
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: s.auth})
	if err != nil {
		return "", fmt.Errorf("list %s: %w", s.display, err)
	}
	branch := DefaultBranch
	for _, r := range refs {
		if r.Name() == plumbing.HEAD && r.Type() == plumbing.SymbolicReference && r.Target().IsBranch() {
			branch = r.Target().Short()
		}
	}
	s.resolved.Store(branch)
	s.log.Info("tracking the remote's default branch", "branch", branch)
	return branch, nil
}

// Commit is what a revision records about a commit.
type Commit struct {
	SHA     string
	Author  string // "Name <email>"
	Message string
	Time    time.Time // committer time: when it became part of the branch
}

// CommitInfo reads a commit of the clone.
func (s *Source) CommitInfo(sha string) (Commit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return commitInfo(s.repo, sha)
}

func commitInfo(repo *git.Repository, sha string) (Commit, error) {
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return Commit{}, fmt.Errorf("commit %s: %w", sha, err)
	}
	return Commit{
		SHA:     c.Hash.String(),
		Author:  fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
		Message: strings.TrimRight(c.Message, "\n"),
		Time:    c.Committer.When.UTC(),
	}, nil
}
