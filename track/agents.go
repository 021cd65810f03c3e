package track

import "net/netip"

// The User-Agent substrings Judge looks for, lower-cased. doc.go says where
// each comes from. They are matched with strings.Contains on the lower-cased
// header, so each must be specific enough not to occur in a browser's.
var (
	// scannerAgents: security gateways and link checkers, HTTP libraries
	// and headless browsers. None of these is a person reading mail.
	scannerAgents = []string{
		"barracuda",
		"proofpoint",
		"mimecast",
		"bingpreview",             // Outlook.com, Microsoft link checks
		"existence discovery",     // Microsoft Office checking a link before opening it
		"edge/12.246 mozilla/5.0", // the opening bot GMass reported on Gmail (2019)
		"cisco", "ironport",
		"trend micro", "trendmicro",
		"symantec", "messagelabs",
		"forcepoint", "sophos", "fortinet", "fortimail", "zscaler",
		"curl/", "wget/", "python-requests", "python-urllib", "python-httpx", "aiohttp",
		"go-http-client", "okhttp", "apache-httpclient", "java/", "libwww-perl",
		"node-fetch", "axios/", "undici",
		"headlesschrome", "phantomjs", "puppeteer", "playwright", "selenium",
	}

	// botAgents: crawlers and link-preview fetchers, besides "bot".
	botAgents = []string{"crawler", "crawling", "spider", "preview", "slurp", "facebookexternalhit"}

	gmailAgents   = []string{"googleimageproxy", "via ggpht.com"}
	yahooAgents   = []string{"yahoomailproxy"}
	outlookAgents = []string{"ms-office", "msoffice", "microsoft outlook", "microsoft office"}
)

var (
	// appleMPP: Apple's own network. Mail Privacy Protection fetches from
	// it; iCloud Private Relay, which carries Safari's browsing, egresses
	// from the partners listed in Apple's egress-ip-ranges.csv instead.
	appleMPP = []netip.Prefix{
		netip.MustParsePrefix("17.0.0.0/8"),
	}

	// microsoftMail: the addresses Exchange Online's servers send from, as
	// published in the SPF record spf.protection.outlook.com. Safe Links
	// checks the URLs of arriving mail from these.
	microsoftMail = []netip.Prefix{
		netip.MustParsePrefix("40.92.0.0/15"),
		netip.MustParsePrefix("40.107.0.0/16"),
		netip.MustParsePrefix("52.100.0.0/14"),
		netip.MustParsePrefix("104.47.0.0/17"),
		netip.MustParsePrefix("2a01:111:f400::/48"),
		netip.MustParsePrefix("2a01:111:f403::/48"),
	}
)
