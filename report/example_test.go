package report_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/mxrelay/mxrelay/report"
)

func ExampleParse() {
	const msg = "Return-Path: <>\r\n" +
		"From: MAILER-DAEMON@mail.example.net (Mail Delivery System)\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\n" +
		"Auto-Submitted: auto-replied\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n" +
		"\r\n" +
		"--b\r\n" +
		"Content-Type: text/plain\r\n" +
		"\r\n" +
		"I'm sorry to have to inform you that your message could not be delivered.\r\n" +
		"--b\r\n" +
		"Content-Type: message/delivery-status\r\n" +
		"\r\n" +
		"Reporting-MTA: dns; mail.example.net\r\n" +
		"\r\n" +
		"Final-Recipient: rfc822; nobody@example.org\r\n" +
		"Action: failed\r\n" +
		"Status: 5.1.1\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: Recipient address\r\n" +
		"    rejected: User unknown\r\n" +
		"--b\r\n" +
		"Content-Type: text/rfc822-headers\r\n" +
		"\r\n" +
		"Message-ID: <welcome-1@shop.example.com>\r\n" +
		"X-Campaign: welcome\r\n" +
		"--b--\r\n"

	r, err := report.Parse(strings.NewReader(msg))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Kind, r.NullSender, r.ReportingMTA)
	for _, x := range r.Recipients {
		fmt.Println(x.FinalRecipient, x.Action, x.Status, x.Code)
		fmt.Println(x.DiagnosticCode)
	}
	fmt.Println(r.Original.MessageID, r.Original.Header.Get("X-Campaign"))
	// Output:
	// dsn true mail.example.net
	// nobody@example.org failed 5.1.1 550
	// 550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown
	// welcome-1@shop.example.com welcome
}
