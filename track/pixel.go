package track

// pixelGIF is a 1×1 GIF89a whose one pixel is fully transparent: a
// two-colour global table (white, black), a graphic control extension
// marking colour 0 transparent, and an LZW image of one index.
const pixelGIF = "GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00" +
	"!\xf9\x04\x01\x00\x00\x00\x00" +
	",\x00\x00\x00\x00\x01\x00\x01\x00\x00" +
	"\x02\x02D\x01\x00;"

// PixelGIF returns the 43-byte transparent 1×1 GIF the open endpoint serves
// (Content-Type image/gif). Each call returns a new copy.
func PixelGIF() []byte { return []byte(pixelGIF) }

const (
	pixelTagStart = `<img src="`
	pixelTagEnd   = `" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px;" />`
)

// appendPixelTag appends the open-tracking <img> for src to dst.
func appendPixelTag(dst []byte, src string) []byte {
	dst = append(dst, pixelTagStart...)
	dst = appendEscaped(dst, src)
	return append(dst, pixelTagEnd...)
}
