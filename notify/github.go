package notify

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// GitHubAPIVersion is the REST API version Shoal asks GitHub for.
const GitHubAPIVersion = "2022-11-28"

// GitHubDescriptionLimit is the longest description GitHub keeps, in characters.
const GitHubDescriptionLimit = 140

// gitHub creates commit statuses through GitHub's REST API:
// POST {api}/repos/{owner}/{repo}/statuses/{sha}.
type gitHub struct {
	ep      endpoint
	base    string // {api}/repos/{owner}/{repo}/statuses/
	context string
	link    string
}

func newGitHub(cfg Config, c *http.Client, link string) (*gitHub, error) {
	if !githubRepoPattern.MatchString(cfg.GitHubRepo) || strings.Contains("/"+cfg.GitHubRepo+"/", "/../") || strings.Contains("/"+cfg.GitHubRepo+"/", "/./") {
		return nil, &ConfigError{"GitHubRepo", "want owner/name"}
	}
	api, err := checkEndpoint("GitHubAPI", cfg.GitHubAPI, DefaultGitHubAPI, false)
	if err != nil {
		return nil, err
	}
	if err := checkCredential("GitHubToken", cfg.GitHubToken); err != nil {
		return nil, err
	}
	owner, name, _ := strings.Cut(cfg.GitHubRepo, "/")
	return &gitHub{
		ep: endpoint{client: c, secrets: []string{cfg.GitHubToken}, header: http.Header{
			"Accept":               {"application/vnd.github+json"},
			"Authorization":        {"Bearer " + cfg.GitHubToken},
			"Content-Type":         {"application/json"},
			"User-Agent":           {"shoal"},
			"X-Github-Api-Version": {GitHubAPIVersion},
		}},
		base:    api.JoinPath("repos", owner, name, "statuses").String() + "/",
		context: cfg.Context,
		link:    link,
	}, nil
}

func (g *gitHub) Name() string { return "github" }

func (g *gitHub) Send(ctx context.Context, r Report) error {
	body, _ := json.Marshal(struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url,omitempty"`
		Description string `json:"description"`
		Context     string `json:"context"`
	}{states[r.State].github, linkFor(g.link, r.Commit), describe(r, GitHubDescriptionLimit), g.context})
	return g.ep.post(ctx, g.base+url.PathEscape(r.Commit), nil, body)
}
