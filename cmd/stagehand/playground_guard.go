package main

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"unicode"
)

// The playground's buttons run the sample repository's scripts on this
// machine, and a comment can set their variables. So a state-changing
// request is served only when it comes from the playground's own pages (or
// its push hook) and carries the token made at this start:
//
//   - it is addressed to the playground by a name no other site can take
//     (localhost, an IP address, or the host of the printed URL): a page of
//     another site whose name was made to point at 127.0.0.1 (DNS
//     rebinding) is refused;
//   - the browser says it comes from that same origin (Origin,
//     Sec-Fetch-Site): a form on another site's page is refused;
//   - it carries the token, which only the playground's own pages (a
//     hidden field) and its hook's token file (readable by this user only)
//     hold.

// playgroundTokenField is the hidden field of the playground's forms that
// carries the token.
const playgroundTokenField = "token"

// playgroundTokenHeader carries the token in the push hook's request.
const playgroundTokenHeader = "X-Stagehand-Playground-Token"

// formAction serves h only for a request sent by one of the playground's
// own forms; any other gets 403 and changes nothing.
func (pg *playground) formAction(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		why := pg.foreignRequest(r, true)
		if why == "" && !pg.tokenMatches(r.PostFormValue(playgroundTokenField)) {
			why = "the form does not carry this playground's token (it changes at every start): " +
				"reload the playground's page and click again"
		}
		if why != "" {
			pg.refuse(w, r, why)
			return
		}
		h(w, r)
	}
}

// hookAction serves h only for the push hook of this start (its token in
// the playground-hook header); any other request gets 403 and changes
// nothing.
func (pg *playground) hookAction(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		why := pg.foreignRequest(r, false)
		if why == "" && !pg.tokenMatches(r.Header.Get(playgroundTokenHeader)) {
			why = "the request does not carry this playground's token in " + playgroundTokenHeader +
				": only the sample repository's push hook may call it (restarting the playground writes the hook and its token file again)"
		}
		if why != "" {
			pg.refuse(w, r, why)
			return
		}
		h(w, r)
	}
}

func (pg *playground) tokenMatches(got string) bool {
	return pg.token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(pg.token)) == 1
}

func (pg *playground) refuse(w http.ResponseWriter, r *http.Request, why string) {
	pg.logger.Warn("the playground refused a request", "path", r.URL.Path, "reason", why)
	http.Error(w, "Stagehand playground refused this request: "+why, http.StatusForbidden)
}

// foreignRequest says why r does not come from the playground's own pages,
// or "" when it does. A browser always sends Origin with a form post; the
// push hook, not a browser, sends none, so browser says whether one is
// required.
func (pg *playground) foreignRequest(r *http.Request, browser bool) string {
	if !pg.ownHost(r.Host) {
		return fmt.Sprintf("it is addressed to %q, a name the playground does not answer to "+
			"(a page of another site may have pointed its name at this machine); open the playground at localhost or 127.0.0.1", r.Host)
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return fmt.Sprintf("the browser says it comes from the page of another site (Sec-Fetch-Site: %s); "+
			"the playground takes actions only from its own pages", site)
	}
	own := "http://" + r.Host
	switch origin := r.Header.Get("Origin"); {
	case origin == "" && browser:
		return "it has no Origin header, so it cannot be told from a form on another site's page; " +
			"use the playground's own pages in a browser (" + own + "/playground)"
	case origin != "" && origin != own:
		return fmt.Sprintf("it comes from the page of another site (Origin %s, not %s); "+
			"the playground takes actions only from its own pages", origin, own)
	}
	return ""
}

// ownHost reports whether a request's Host names the playground in a way
// no other site can: localhost, an IP address, or the printed URL's host.
func (pg *playground) ownHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") || strings.EqualFold(host, pg.publicHost) {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

// checkHookLine checks one line git hands the post-receive hook,
// "<old-sha> <new-sha> <ref>": full shas and a branch name, so that no
// value reaching git can be read as an option or a revision range.
func checkHookLine(line string) (before, after, ref string, err error) {
	f := strings.Split(line, " ")
	if len(f) != 3 {
		return "", "", "", fmt.Errorf("%q is not \"<old-sha> <new-sha> <ref>\"", line)
	}
	before, after, ref = f[0], f[1], f[2]
	for _, sha := range []string{before, after} {
		if !isFullSHA(sha) {
			return "", "", "", fmt.Errorf("%q is not a commit id (40 hexadecimal digits)", sha)
		}
	}
	if before == zeroSHA && after == zeroSHA {
		return "", "", "", fmt.Errorf("%q neither creates, updates nor deletes %s", line, ref)
	}
	if err := checkBranchRef(ref); err != nil {
		return "", "", "", err
	}
	return before, after, ref, nil
}

func isFullSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// checkBranchRef accepts refs/heads/<name> where the name keeps git's
// check-ref-format rules, with letters, digits and - . _ / + only.
func checkBranchRef(ref string) error {
	name, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok {
		return fmt.Errorf("%q is not a branch (refs/heads/…): the playground sends the push webhook of branches only", ref)
	}
	bad := func(why string) error {
		return fmt.Errorf("branch %q is refused: %s", name, why)
	}
	switch {
	case name == "" || len(ref) > 255:
		return bad("a branch name has 1 to 244 characters")
	case strings.Contains(name, ".."):
		return bad(`it contains ".."`)
	case strings.HasSuffix(name, "."):
		return bad(`it ends with "."`)
	}
	for _, c := range name {
		if !(unicode.IsLetter(c) || unicode.IsDigit(c) || strings.ContainsRune("-._/+", c)) {
			return bad(fmt.Sprintf("it contains %q; use letters, digits and - . _ / + only", c))
		}
	}
	for _, part := range strings.Split(name, "/") {
		switch {
		case part == "":
			return bad(`it has an empty part ("//", or "/" at an end)`)
		case strings.HasPrefix(part, ".") || strings.HasPrefix(part, "-"):
			return bad(`a part starts with "." or "-"`)
		case strings.HasSuffix(part, ".lock"):
			return bad(`a part ends with ".lock"`)
		}
	}
	return nil
}
