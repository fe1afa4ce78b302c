package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// GitLabDescriptionLimit is the longest description Shoal sends GitLab, in characters;
// GitLab shows it on one line beside the status.
const GitLabDescriptionLimit = 255

// gitLab creates commit statuses through GitLab's REST API v4:
// POST {api}/api/v4/projects/{id}/statuses/{sha}, the project path URL-encoded.
type gitLab struct {
	ep   endpoint
	base string // {api}/api/v4/projects/{id}/statuses/
	name string
	link string
}

func newGitLab(cfg Config, c *http.Client, link string) (*gitLab, error) {
	p := cfg.GitLabProject
	if !gitlabProjectPattern.MatchString(p) || strings.Contains("/"+p+"/", "/../") || strings.Contains("/"+p+"/", "/./") {
		return nil, &ConfigError{"GitLabProject", "want a project path such as group/name or a numeric project ID"}
	}
	api, err := checkEndpoint("GitLabAPI", cfg.GitLabAPI, DefaultGitLabAPI, false)
	if err != nil {
		return nil, err
	}
	if err := checkCredential("GitLabToken", cfg.GitLabToken); err != nil {
		return nil, err
	}
	// The path goes in one segment, its slashes as %2F; String keeps them so.
	base := api.String() + "/api/v4/projects/" + url.PathEscape(p) + "/statuses/"
	return &gitLab{
		ep: endpoint{client: c, secrets: []string{cfg.GitLabToken}, header: http.Header{
			"Private-Token": {cfg.GitLabToken},
			"Content-Type":  {"application/json"},
			"User-Agent":    {"shoal"},
		}},
		base: base,
		name: cfg.Context,
		link: link,
	}, nil
}

func (g *gitLab) Name() string { return "gitlab" }

// Send creates the status. GitLab answers 400 "Cannot transition status via :enqueue
// from :pending" when the status it already has for this commit and name cannot move to
// the one asked for, which happens when a retry repeats a request whose answer was lost,
// or another node sent the same transition first: the status already says what this
// report says, so the 400 counts as delivered rather than as a permanent failure.
func (g *gitLab) Send(ctx context.Context, r Report) error {
	body, _ := json.Marshal(struct {
		State       string `json:"state"`
		Name        string `json:"name"`
		TargetURL   string `json:"target_url,omitempty"`
		Description string `json:"description"`
	}{states[r.State].gitlab, g.name, linkFor(g.link, r.Commit), describe(r, GitLabDescriptionLimit)})
	err := g.ep.post(ctx, g.base+url.PathEscape(r.Commit), nil, body)
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusBadRequest && bytes.Contains(bytes.ToLower(se.body), []byte("cannot transition status")) {
		return nil
	}
	return err
}
