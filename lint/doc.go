// Package lint checks one message offline for what spam filters and mailbox
// providers are known to hold against it. It only warns: every Finding is
// advice, none stops a message from being sent.
//
// Message checks a mime.Message before it is written and Raw a message as
// sent (parsed with go-message, transfer encodings and charsets decoded);
// for the same message both return the same findings. Findings come in the
// order of the table below, and within a rule in document order. Options
// say whether the message is list mail.
//
// The rules, their names (Finding.Rule), what each catches and what it
// mirrors (Finding.Mirrors; SpamAssassin 4 rule names where one exists):
//
//	rule                      what                                                        mirrors
//	------------------------  ----------------------------------------------------------  ------------------------------------------
//	unreadable                Raw only: the header cannot be parsed; no other rule runs   servers reject mail they cannot parse
//	missing-text              no non-blank text/plain body part                           text-only clients, filters' preference
//	html-only                 a text/html part and nothing else                           MIME_HTML_ONLY
//	image-only                HTML with ≥ 1 <img> and under 1600 bytes of visible text    HTML_IMAGE_ONLY_04 … _16 (by text size),
//	                                                                                      plus HTML_SHORT_LINK_IMG_1 when the HTML
//	                                                                                      is under 1024 bytes and an image is linked
//	text-html-mismatch        text and HTML each have ≥ 5 distinct words (3+ letters,     MPART_ALT_DIFF
//	                          URLs left out) and under half of the smaller set is in
//	                          the other
//	link-text-mismatch        an <a href> whose text shows a domain (a word starting      __SPOOFED_URL
//	                          http://, https:// or www., or the whole text being one
//	                          domain-like word) that is not the href's host, a parent or
//	                          subdomain of it, or a sibling under a common parent of two
//	                          or more labels
//	missing-list-unsubscribe  Options.List and no List-Unsubscribe                        Gmail and Yahoo bulk-sender rules
//	missing-list-id           no List-Id on list mail, or beside a List-Unsubscribe       __LIST_PARTIAL (with List-Unsubscribe),
//	                          (Info)                                                      RFC 2919 otherwise
//	message-size              the written message is over 10 MB (10 MiB)                  many providers refuse larger messages
//	html-clipped              the HTML part is over 102 KB (102 KiB, line breaks as       Gmail clips messages over 102 KB
//	                          CRLF) (Info)
//	ip-link                   an http(s) link whose host is an IPv4 or IPv6 address       NUMERIC_HTTP_ADDR
//	url-shortener             a link to bit.ly, tinyurl.com, t.co, goo.gl, ow.ly, is.gd,  __URL_SHORTENER
//	                          buff.ly, rebrand.ly, cutt.ly, shorturl.at or a subdomain
//	hidden-text               text under an element styled display:none or font-size:0,   HTML_FONT_LOW_CONTRAST (white on white);
//	                          or white text on white                                      hidden text otherwise
//	subject-all-caps          a Subject with ≥ 8 upper-case letters and no lower-case     SUBJ_ALL_CAPS
//	missing-subject           no Subject, or a blank one                                  MISSING_SUBJECT
//
// All rules are Warning except missing-list-id and html-clipped, which are
// Info.
//
// The links of ip-link and url-shortener are those track.Links finds in the
// HTML (a, area and VML hrefs, also inside Outlook conditional comments,
// resolved against a <base>) and the http(s) URLs of the text part. The HTML
// rules read the document as a browser with scripting off does
// (golang.org/x/net/html); script, style, head and comments hold no visible
// text.
//
// hidden-text is deliberately simple. It reads inline style attributes only
// (not <style> sheets or classes): display:none and a zero font-size
// ("0", "0px", "0pt", "0em", "0%") hide an element's text; text whose colour
// (CSS color, or <font color>) is white (white, #fff, #ffffff,
// rgb(255,255,255)) is white on white when no background other than white
// is set on it or an ancestor (CSS background-color or background, or a
// bgcolor attribute), the body's default being white. visibility:hidden,
// tiny non-zero sizes, near-white colours and off-screen positioning are
// not caught. A hidden "preheader" (preview text in a display:none element)
// is reported too: filters see it the same way.
//
// link-text-mismatch compares domains as written: a Unicode domain in the
// text and its A-label in the href count as different.
package lint
