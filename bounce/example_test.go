package bounce_test

import (
	"fmt"

	"github.com/mxrelay/mxrelay/bounce"
)

func ExampleClassify() {
	// A reply during the SMTP transaction.
	c := bounce.Classify(550, "5.1.1", "The email account that you tried to reach does not exist.")
	fmt.Println(c.Category, c.Permanent, c.Suppress)

	// A DSN's Status and Diagnostic-Code.
	c = bounce.Classify(0, "5.7.26", "smtp; 550-5.7.26 This mail has been blocked because the sender is unauthenticated.")
	fmt.Println(c.Category, c.Permanent, c.Suppress)

	// A reply passed as text only: the codes are read from it.
	c = bounce.Classify(0, "", "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints")
	fmt.Println(c)

	// A 5.1.1 that is about the sender is not a dead mailbox.
	c = bounce.Classify(550, "5.1.1", "Message blocked for spam")
	fmt.Println(c)
	// Output:
	// invalid-recipient true true
	// auth-failure true false
	// rate-limited temporary rule=rate-limit
	// policy-block permanent rule=spam-block-policy
}
