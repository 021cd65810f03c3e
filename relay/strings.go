package relay

import (
	"maps"
	"strings"
)

// DefaultStrings returns the built-in English text of the unsubscribe and
// preferences pages, by key: the keys Pages.Strings translates. "%s"
// marks where the list's title goes. The map is a fresh copy.
func DefaultStrings() map[string]string { return maps.Clone(english) }

var english = map[string]string{
	"confirm_title":   "Unsubscribe",
	"confirm_text":    "Stop receiving “%s” at this address?",
	"confirm_button":  "Unsubscribe",
	"done_title":      "You are unsubscribed",
	"done_text":       "You will no longer receive “%s” at this address.",
	"done_all":        "You will no longer receive any mail from us at this address.",
	"prefs_link":      "Choose what you receive",
	"prefs_title":     "Your email preferences",
	"prefs_text":      "Choose the mail you want at this address.",
	"prefs_lists":     "Lists",
	"prefs_all":       "Stop all mail from this sender",
	"prefs_button":    "Save preferences",
	"prefs_saved":     "Your preferences are saved.",
	"prefs_locked":    "Some choices cannot be changed here, because mail to this address failed or was reported.",
	"error_title":     "This link does not work",
	"error_link":      "The link is incomplete, was changed, or is not one of ours. Nothing was changed. Please use the link from the message itself.",
	"error_method":    "This page accepts only links from our messages.",
	"error_temporary": "We could not record your choice just now. Nothing was changed; please try again in a few minutes.",
	"one_click_done":  "Unsubscribed.",
}

// german is built in beside English, as an example of a translation.
var german = map[string]string{
	"confirm_title":   "Abmelden",
	"confirm_text":    "„%s“ an diese Adresse nicht mehr erhalten?",
	"confirm_button":  "Abmelden",
	"done_title":      "Sie sind abgemeldet",
	"done_text":       "Sie erhalten „%s“ an diese Adresse nicht mehr.",
	"done_all":        "Sie erhalten von uns keine E-Mails mehr an diese Adresse.",
	"prefs_link":      "Auswählen, was Sie erhalten",
	"prefs_title":     "Ihre E-Mail-Einstellungen",
	"prefs_text":      "Wählen Sie, welche E-Mails Sie an diese Adresse erhalten möchten.",
	"prefs_lists":     "Listen",
	"prefs_all":       "Keine E-Mails mehr von diesem Absender",
	"prefs_button":    "Einstellungen speichern",
	"prefs_saved":     "Ihre Einstellungen sind gespeichert.",
	"prefs_locked":    "Manches lässt sich hier nicht ändern, weil E-Mails an diese Adresse nicht zustellbar waren oder gemeldet wurden.",
	"error_title":     "Dieser Link funktioniert nicht",
	"error_link":      "Der Link ist unvollständig, wurde verändert oder stammt nicht von uns. Es wurde nichts geändert. Bitte nutzen Sie den Link aus der Nachricht selbst.",
	"error_method":    "Diese Seite nimmt nur Links aus unseren Nachrichten an.",
	"error_temporary": "Ihre Wahl ließ sich gerade nicht speichern. Es wurde nichts geändert; bitte versuchen Sie es in einigen Minuten erneut.",
	"one_click_done":  "Abgemeldet.",
}

// strings returns the text for the first language of accept (an
// Accept-Language header) that has a table, English otherwise, with
// English for every key the table lacks.
func (c *Client) strings(accept string) (lang string, t map[string]string) {
	tables := map[string]map[string]string{"en": english, "de": german}
	for tag, tt := range c.Pages.Strings {
		tag = strings.ToLower(tag)
		merged := maps.Clone(tables[tag])
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, tt)
		tables[tag] = merged
	}
	lang, t = "en", english
	for part := range strings.SplitSeq(accept, ",") {
		tag, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(q) == "q=0" {
			continue
		}
		tag = strings.ToLower(strings.TrimSpace(tag))
		if tt, ok := tables[tag]; ok {
			lang, t = tag, tt
			break
		}
		if base, _, ok := strings.Cut(tag, "-"); ok {
			if tt, ok := tables[base]; ok {
				lang, t = base, tt
				break
			}
		}
	}
	if lang != "en" {
		merged := maps.Clone(english)
		maps.Copy(merged, t)
		t = merged
	}
	return lang, t
}
