module github.com/mxrelay/mxrelay/bench

go 1.26.0

replace github.com/mxrelay/mxrelay => ../

require (
	github.com/mxrelay/mxrelay v0.0.0
	github.com/wneessen/go-mail v0.8.1
)

require (
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
