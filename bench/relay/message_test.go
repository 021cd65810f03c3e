package main

import "testing"

func TestBodyForSize(t *testing.T) {
	for _, size := range []int{5 << 10, 60 << 10} {
		data, err := mxMessage(bodyFor(size)).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if d := len(data) - size; d < -100 || d > 100 {
			t.Errorf("message for %d octets has %d", size, len(data))
		}
	}
}
