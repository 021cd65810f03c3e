// Package track does the message-side and request-side work of open and
// click tracking: it rewrites the links of a message so that each goes
// through a tracking URL, adds the open-tracking image, and judges whether
// a request to the tracking endpoint came from a person or a machine.
// Making the tracking URLs (signed tokens), serving them and keeping the
// history is the caller's work; the package imports no other mxrelay
// package.
//
//   - RewriteHTML passes every http and https link of an HTML body to a
//     function that returns its tracking URL, and inserts a 1×1 image
//     before </body>. Links returns the URLs it would pass, for previews.
//   - RewriteText does the same for the URLs of a text/plain body.
//   - PixelGIF is the image the open endpoint serves; Judge takes what the
//     endpoint saw of a request and returns a Verdict.
//
// # Rewriting
//
// An HTML message is written by hand or by a template tool for a dozen
// mail clients, several of which (Outlook's Word engine above all) read
// markup that a browser would repair differently. So RewriteHTML does not
// parse and re-render the document: it runs golang.org/x/net/html's
// Tokenizer over it, whose raw tokens partition the input, copies every
// token as it is, and changes only the bytes of an href value (and drops
// NoTrackAttr). The tokenizer does not say where an attribute sits inside
// a tag; a small scanner finds that by running the same WHATWG tokenizer
// states over the tag, and a fuzz test checks that both always agree.
// Regular expressions are never run over the HTML.
//
// Tracked are <a href>, <area href> and the VML shapes Outlook draws
// buttons with (v:roundrect, v:rect, v:oval, v:shape), when the URL is
// http or https (in any case), after resolving against the document's
// first <base href> if that is absolute. Outlook conditional comments,
// <!--[if mso]>…<![endif]-->, are one comment token to the tokenizer but
// markup to Outlook: their text is tokenized in turn and its links
// rewritten, so an Outlook reader's click on a "bulletproof" button is
// counted. <noscript> is read as markup, as mail clients, which run no
// scripts, show it. Not tracked: other schemes (mailto:, tel:, sms:,
// javascript:, data:), fragments (#top), relative links with no base, text
// inside <script>, <style>, <title>, <textarea> and ordinary comments,
// URLs in CSS, srcset or <link>, and links marked data-mxrelay-notrack
// (NoTrackAttr), an attribute RewriteHTML always removes. The document is
// handled as bytes: UTF-8 and the ASCII-compatible 8-bit charsets work;
// UTF-16 does not, and a quoted-printable or base64 body must be decoded
// first.
//
// # Judging requests
//
// Judge's rules and where they come from, in the order it tries them:
//
// HEAD requests are machines ("scanner-head"): mail clients and browsers
// fetch with GET, link checkers ask HEAD first. Microsoft's Safe Links has
// been seen sending HEAD, with no User-Agent, from Exchange Online
// addresses, and using up one-time links that way
// (github.com/SergeyMosin/Appointments issue 293,
// github.com/edalzell/laravel-passwordless-login issue 79).
//
// Prefetch headers ("prefetch"): Sec-Purpose: prefetch (Fetch Metadata,
// Chrome's speculation rules), the older Purpose: prefetch and Firefox's
// X-Moz: prefetch, Safari's X-Purpose: preview. A fetch nobody asked for.
//
// Scanner User-Agents ("scanner-ua"): the names security gateways leave
// in their requests (Barracuda, Proofpoint, Mimecast, Cisco/IronPort,
// Trend Micro, Symantec, Sophos, Forcepoint, Fortinet, Zscaler),
// Microsoft's BingPreview, which visits the links of mail to Outlook.com
// (github.com/phpList/phplist3 issue 415), and "Microsoft Office Existence
// Discovery", Office checking a URL before it hands it to the browser;
// HTTP libraries (curl, Wget, python-requests, Go-http-client, Java,
// OkHttp and others) and headless browsers (HeadlessChrome, PhantomJS,
// Puppeteer, Playwright, Selenium); and the Chrome-42-as-Edge-12 string
// GMass found opening Gmail messages from Google addresses seconds after
// sending ("Dealing with false opens in Gmail", gmass.co, 2019). A click
// with no User-Agent at all is counted here too: Safe Links sends none.
//
// Microsoft 365's mail servers ("scanner-ip"): the ranges of
// spf.protection.outlook.com, where the Safe Links requests above came
// from. People do not browse from mail servers.
//
// Bots ("bot-ua"): a User-Agent with "bot" (not the phone brand Cubot),
// "crawler", "spider", "preview" (link-preview fetchers), "Slurp" or
// "facebookexternalhit"; an open with no User-Agent; a click with the bare
// "Mozilla/5.0", which no browser sends.
//
// Apple Mail Privacy Protection ("apple-mpp"): since iOS 15 and macOS 12
// (2021) Apple Mail, with the protection on, as most of its users have
// it, downloads every remote image of a message when the message reaches
// the device, through at least two proxies, whether or not it is read
// (Apple's description of the feature; SocketLabs' measurements,
// "Identifying Apple MPP opens"). Senders report those fetches with the
// bare User-Agent "Mozilla/5.0", which no browser sends, from Apple's own
// network, 17.0.0.0/8: an open with either is MPP. Apple's
// egress-ip-ranges.csv, often cited here, lists iCloud Private Relay's
// exits, which carry Safari's browsing and so a reader's real clicks: it
// is not used. A click from 17.0.0.0/8 is left to the other rules, since
// Apple's own staff click from there.
//
// Gmail's image proxy ("gmail-proxy"): since December 2013 Gmail fetches
// images through googleusercontent.com, with a User-Agent ending
// "(via ggpht.com GoogleImageProxy)", and caches them (Word to the Wise,
// "Gmail deploys image proxy servers"). The fetch happens when a reader
// opens the message, which is why device-detection databases moved the
// proxy from robot to mail client in 2018 (ScientiaMobile, "What is Google
// Image Proxy?"), and why senders count these opens. So a proxied open is
// a person, with the reason saying it came through Gmail. But senders
// also report Gmail fetching right after delivery, before anyone can have
// read the message: the first fetch within ScannerWindow of delivery is a
// machine.
//
// Yahoo's proxy ("yahoo-proxy", User-Agent "YahooMailProxy;
// https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html") is described
// by Yahoo as fetching the content of the URLs in messages for its users'
// safety; when it fetches is not documented, and it is treated like
// Gmail's. So are Outlook's own fetches ("outlook-proxy": "Microsoft
// Outlook", "ms-office", "MSOffice" in the User-Agent): Outlook for Windows
// blocks remote images until the reader allows them, and fetches when it
// shows them. A click with any of these User-Agents is a machine: a
// person's click opens a browser, which sends its own. For Outlook on the
// web and Outlook.com we found no stable public User-Agent; their fetches
// look like a browser's or meet the other rules.
//
// Delivery-time requests ("scanner-fast"): a security gateway opens and
// clicks a message as it arrives, before the reader has it
// (MetaCompliance, "How to identify if a click is genuine or caused by
// scanning software": seconds after delivery is a scanner, minutes or
// hours a person). Any request less than ScannerWindow (10 s) after
// delivery is a machine.
//
// # What cannot be known
//
// These numbers are estimates, and some are not knowable at all:
//
//   - A tracked open is an image fetch, not a reading. Readers who block
//     images (Outlook's default, many companies', text-only clients) read
//     without a recorded open; so an open rate is a lower bound for those
//     readers, and a click with no open before it may well be a person.
//     Judge does not call a click a machine for that.
//   - Apple MPP fetches every image of every message, read or not: an
//     Apple Mail reader's opens say nothing, and whether they read a
//     message cannot be learned from the image at all. Judge marks these
//     machine; a real open after the prefetch is shown from what Apple
//     already fetched, and does not arrive.
//   - Proxies hide the reader: the address and User-Agent of a Gmail,
//     Yahoo or Apple fetch are the proxy's, so location and device are
//     unknown, and a cached image means later opens are not seen.
//   - A person who clicks within seconds of delivery, before any scanner,
//     looks exactly like a scanner and is counted as one; a scanner that
//     sends a browser's User-Agent from an unlisted address a minute after
//     delivery looks exactly like a person and is counted as one.
//   - User-Agents can be anything and address ranges move: the lists in
//     agents.go are what was published or observed, and will age.
//   - Judge sees one request. The strongest sign of a scanner is in the
//     history: every link of a message clicked within the same second.
//     The caller, which keeps the history, can add that rule.
//
// Report machine opens and clicks beside human ones rather than dropping
// them: "opened by a person" is a lower bound, "fetched at all" an upper
// one.
package track
