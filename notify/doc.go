// Package notify delivers each commit's fate to where people look: GitHub commit
// statuses, GitLab commit statuses and a signed webhook. A Report is one transition of one
// commit (pending, success, failure, superseded); a Notifier sends it to every sink that
// Config names, retrying each failed sink with jittered exponential backoff until it
// accepts, refuses for good, or the context ends.
//
// notify owns delivery only. It never decides when a commit is reported or what its state
// is (the agent does), keeps no state between reports, and never logs: errors go back to
// the caller, and no token or secret ever appears in them. Answers from the network are
// untrusted: their bodies are read up to MaxResponseBody, and at most 200 bytes of one,
// escaped for a terminal, reach an error message.
package notify
