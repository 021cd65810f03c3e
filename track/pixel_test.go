package track_test

import (
	"bytes"
	"image/gif"
	"testing"

	"github.com/mxrelay/mxrelay/track"
)

func TestPixelGIF(t *testing.T) {
	p := track.PixelGIF()
	if len(p) != 43 {
		t.Errorf("PixelGIF is %d bytes, want 43", len(p))
	}
	img, err := gif.Decode(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1 || b.Dy() != 1 {
		t.Errorf("PixelGIF is %v", b)
	}
	if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
		t.Errorf("PixelGIF alpha %d, want 0 (transparent)", a)
	}
	p[0] = 'X'
	if track.PixelGIF()[0] != 'G' {
		t.Error("PixelGIF returns a shared slice")
	}
}
