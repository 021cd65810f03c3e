package lint_test

import (
	"fmt"
	"net/mail"

	"github.com/mxrelay/mxrelay/lint"
	"github.com/mxrelay/mxrelay/mime"
)

func Example() {
	m := &mime.Message{
		From:    mail.Address{Address: "deals@example.com"},
		To:      []mail.Address{{Address: "ada@example.org"}},
		Subject: "LAST CHANCE TO SAVE",
		HTML:    `<p>Our sale ends tonight: <a href="https://bit.ly/3xYz">www.example.com</a></p>`,
	}
	for _, f := range lint.Message(m, nil) {
		fmt.Printf("%s [%s]\n", f, f.Mirrors)
	}
	// Output:
	// missing-text (warning): The message has HTML but no text/plain part. [text-only clients and many filters expect a text/plain alternative to the HTML]
	// html-only (warning): The message consists of a text/html part only. [MIME_HTML_ONLY]
	// link-text-mismatch (warning): A link's text shows "www.example.com" but it goes to "bit.ly" (href "https://bit.ly/3xYz"). [__SPOOFED_URL]
	// url-shortener (warning): The link "https://bit.ly/3xYz" uses the URL shortener "bit.ly". [__URL_SHORTENER]
	// subject-all-caps (warning): The Subject "LAST CHANCE TO SAVE" is all capitals. [SUBJ_ALL_CAPS]
}
