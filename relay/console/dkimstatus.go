package console

import (
	"bytes"
	"context"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
)

// dkimStatus says how a message is signed and whether its signatures
// verify against the keys published in DNS.
type dkimStatus struct {
	PerCopy    bool // signed at each attempt (list and tracked mail): a copy was signed to check
	Signatures []dkimSig
	Unsigned   bool
	Err        string
}

type dkimSig struct {
	Domain, Selector, Algorithm string
	Verified                    bool
	Result                      string
}

// dkimOf reads the job's DKIM-Signature fields and verifies them with
// go-msgauth, looking the keys up through the client's resolver.
func (k *server) dkimOf(ctx context.Context, job *queue.Job) dkimStatus {
	var st dkimStatus
	data := job.Message
	if headerOf(data).get("DKIM-Signature") == "" {
		if k.c.Signer == nil {
			st.Unsigned = true
			return st
		}
		// A list or tracked message is signed per copy, at each attempt:
		// sign one copy as the attempt would, to check the keys.
		var b bytes.Buffer
		if err := k.c.Signer.Sign(&b, bytes.NewReader(data)); err != nil {
			st.Err = err.Error()
			return st
		}
		data, st.PerCopy = b.Bytes(), true
	}
	for _, f := range headerOf(data).Fields {
		if !strings.EqualFold(f.Name, "DKIM-Signature") {
			continue
		}
		tags := dkimTags(f.Value)
		st.Signatures = append(st.Signatures, dkimSig{Domain: tags["d"], Selector: tags["s"], Algorithm: tags["a"]})
	}
	res := k.resolver()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(data), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return res.LookupTXT(ctx, name) },
	})
	if err != nil {
		st.Err = err.Error()
		return st
	}
	for i, v := range vs {
		if i >= len(st.Signatures) {
			break
		}
		s := &st.Signatures[i]
		switch {
		case v.Err == nil:
			s.Verified, s.Result = true, "verified against the published key"
		case dkim.IsTempFail(v.Err):
			s.Result = "not checked: " + v.Err.Error()
		default:
			s.Result = "fails: " + v.Err.Error()
		}
	}
	return st
}

// resolver is the one the client's transport uses.
func (k *server) resolver() *mx.Resolver {
	if k.c.Resolver != nil {
		return k.c.Resolver
	}
	if d, ok := k.c.Transport.(*relay.Direct); ok && d.Resolver != nil {
		return d.Resolver
	}
	return mx.DefaultResolver
}

// dkimTags reads the tag=value list of a DKIM-Signature (RFC 6376
// §3.2), for display.
func dkimTags(v string) map[string]string {
	out := map[string]string{}
	for t := range strings.SplitSeq(v, ";") {
		name, val, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		out[strings.TrimSpace(name)] = strings.Join(strings.Fields(val), "")
	}
	return out
}
