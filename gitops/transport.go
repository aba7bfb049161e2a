package gitops

import (
	"errors"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
)

// go-git's file:// transport runs the git-upload-pack binary, which the
// appliance image does not have. Its in-process server speaks the same
// protocol from a go-git storer, so local paths and file:// URLs work
// without git installed. The protocol table is a global map that go-git
// reads without a lock, so it is replaced once here, before any fetch can
// run. (go-git's own filesystem loader would read a non-bare repository's
// worktree as if it were its .git directory, hence localLoader.)
func init() {
	client.InstallProtocol("file", server.NewClient(localLoader{}))
}

// localLoader opens the repository at an endpoint's path, bare or not.
type localLoader struct{}

func (localLoader) Load(ep *transport.Endpoint) (storer.Storer, error) {
	r, err := git.PlainOpenWithOptions(ep.Path, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, transport.ErrRepositoryNotFound
	}
	if err != nil {
		return nil, err
	}
	return r.Storer, nil
}
