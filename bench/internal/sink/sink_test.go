package sink

import "testing"

func TestSourceLength(t *testing.T) {
	for _, tc := range []struct{ size, want int }{{5120, 4958}, {61440, 60582}} {
		if got := SourceLength(tc.size); got != tc.want {
			t.Errorf("SourceLength(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
}
