// Package source owns Shoal's Git source: where the manifests live (Source), a local clone
// that survives restarts (Repo), the poll loop that turns new commits into desired state
// (Poller) and the webhook that asks it to look now (Webhook). For `shoal validate` and
// `shoal plan`, Local reads a repository on this machine where it is, naming revisions as
// git rev-parse does (Resolve).
//
// The flow for one commit is Head (a cheap ls-remote) → Fetch (only when the head moved)
// → Load (spec.Load over the commit's tree, read straight from the object store, no
// checkout). A revision loads all-or-nothing: one that fails is reported with its
// diagnostics and the last good one stays in force.
//
// source talks to Git through go-git only and never runs the git command itself; note that
// go-git's own file:// transport does run git-upload-pack, so local sources need it
// installed. source does not decide what to do with a revision: it never plans, never
// touches containers and never keeps state that a re-clone cannot rebuild.
package source
