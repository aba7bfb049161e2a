package gitops

import (
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// ExtractRef writes the files of rev (a branch, tag, commit or any
// revision git rev-parse takes) of the repository holding dir below
// subPath into out, exactly as a master's sync extracts a fetched commit,
// and returns the commit: `berth diff REF` sees what the master would
// load. dir may be anywhere in a work tree, as git finds its repository.
func ExtractRef(dir, rev, subPath, out string) (Commit, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return Commit{}, fmt.Errorf("%s is not in a Git repository", dir)
	}
	if err != nil {
		return Commit{}, err
	}
	sub, err := cleanSubPath(subPath)
	if err != nil {
		return Commit{}, err
	}
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return Commit{}, fmt.Errorf("revision %q: %w", rev, err)
	}
	c, err := commitInfo(repo, h.String())
	if err != nil {
		return Commit{}, err
	}
	return c, extractCommit(repo, sub, c.SHA, out)
}
