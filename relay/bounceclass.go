package relay

import (
	"regexp"
	"strings"
)

// mailboxGone reports whether a permanent refusal says the address itself
// does not exist, so that mailing it again can only hurt the sender's
// reputation: the enhanced codes RFC 3463 gives for a bad mailbox or
// domain (5.1.1 bad mailbox, 5.1.2 bad domain, 5.1.3 bad address syntax,
// 5.1.6 mailbox moved, 5.1.10 null MX), or, for a server that sends no
// enhanced code, a 550/551/553 whose text says so in the usual words.
//
// Refusals about the sender (5.7.x policy and reputation blocks, "spam",
// "blocked", "blacklisted", rate limits) never count, whatever the code:
// they say nothing about the recipient.
func mailboxGone(code int, enhanced, text string) bool {
	if strings.HasPrefix(enhanced, "5.7.") || aboutSender.MatchString(text) {
		return false
	}
	switch enhanced {
	case "5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10":
		return true
	case "":
		return (code == 550 || code == 551 || code == 553) && noMailbox.MatchString(text)
	}
	return false
}

// noMailbox matches what servers say of a mailbox that does not exist.
var noMailbox = regexp.MustCompile(`(?i)(` +
	`no such (user|mailbox|recipient|address)|` +
	`(user|mailbox|recipient|address|account)( name)? (is )?(unknown|not found|does not exist|doesn't exist|invalid|unavailable|disabled)|` +
	`unknown (user|recipient|mailbox|address)|` +
	`invalid (recipient|mailbox|address)|` +
	`(user|recipient|mailbox) not (found|known|local)|` +
	`mailbox (has been )?(deleted|removed|closed)|` +
	`not a valid (mailbox|recipient|user)` +
	`)`)

// aboutSender matches refusals that are about the sender, not the address.
var aboutSender = regexp.MustCompile(`(?i)(spam|blocked|block list|blocklist|blacklist|denylist|reputation|policy|rate limit|too many|dmarc|spf|dkim|rbl|spamhaus)`)
