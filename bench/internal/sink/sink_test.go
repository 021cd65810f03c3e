package main

import "testing"

func TestSourceLength(t *testing.T) {
	for _, tc := range []struct{ size, want int }{{5120, 4958}, {61440, 60582}} {
		if got := sourceLength(tc.size); got != tc.want {
			t.Errorf("sourceLength(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
}

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
