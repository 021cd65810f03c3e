package lint

import "testing"

func FuzzRaw(f *testing.F) {
	for _, c := range cases() {
		if len(c.m.Attachments) > 0 && len(c.m.Attachments[0].Data) > 1<<20 {
			continue
		}
		if b, err := c.m.Bytes(); err == nil {
			f.Add(b, c.o != nil && c.o.List)
		}
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/html\r\n\r\n<a href=http://[::1]/>a</a>\r\n--x--\r\n"), false)
	f.Add([]byte("Content-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!"), true)
	f.Add([]byte(""), false)
	f.Fuzz(func(t *testing.T, data []byte, list bool) {
		fs := Raw(data, &Options{List: list})
		for i := 1; i < len(fs); i++ {
			if ruleOrder[fs[i-1].Rule] > ruleOrder[fs[i].Rule] {
				t.Fatalf("out of order: %v", fs)
			}
		}
	})
}
