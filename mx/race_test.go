//go:build race

package mx_test

const raceEnabled = true
