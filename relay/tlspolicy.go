package relay

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/mxrelay/mxrelay/mx"
)

// tlsPolicy is what one host's session must achieve.
type tlsPolicy struct {
	requireTLS bool       // Direct.RequireTLS: verified PKIX TLS
	sts        *mx.Policy // MTA-STS in enforce mode (RFC 8461)
	dane       []mx.TLSA  // usable, authenticated TLSA records (RFC 7672)
}

func (c *Direct) basePolicy() tlsPolicy { return tlsPolicy{requireTLS: c.RequireTLS} }

// required reports whether the session must be TLS.
func (p tlsPolicy) required() bool { return p.requireTLS || p.sts != nil || len(p.dane) > 0 }

// name names the policy in results and logs. DANE wins over MTA-STS when
// both apply (RFC 8461 §2).
func (p tlsPolicy) name() string {
	switch {
	case len(p.dane) > 0:
		return "dane"
	case p.sts != nil:
		return "mta-sts"
	case p.requireTLS:
		return "required"
	}
	return "opportunistic"
}

// config returns the TLS configuration for a session with host under p,
// recording in info whether the peer was verified.
func (p tlsPolicy) config(base *tls.Config, host string, info *TLSInfo) *tls.Config {
	var cfg *tls.Config
	if base != nil {
		cfg = base.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	cfg.ServerName = host
	roots := cfg.RootCAs
	switch {
	case len(p.dane) > 0:
		// DANE replaces PKIX: the TLSA records say what to trust.
		recs := p.dane
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := verifyDANE(cs.PeerCertificates, recs, host); err != nil {
				return err
			}
			info.Verified = true
			return nil
		}
	case p.required():
		cfg.InsecureSkipVerify = false
		cfg.VerifyConnection = func(tls.ConnectionState) error {
			info.Verified = true // called after the standard verification passed
			return nil
		}
	default:
		// Opportunistic: encrypt whatever the certificate, but find out
		// whether it would have verified, for the result.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			info.Verified = verifyPKIX(cs.PeerCertificates, roots, host) == nil
			return nil
		}
	}
	return cfg
}

func verifyPKIX(chain []*x509.Certificate, roots *x509.CertPool, host string) error {
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host})
	return err
}

// usableTLSA keeps the records an SMTP client can use (RFC 7672 §3.1):
// DANE-TA(2) and DANE-EE(3), with a known selector and matching type.
// When none is usable, DANE does not apply and TLS stays opportunistic
// (RFC 7672 §2.2).
func usableTLSA(recs []mx.TLSA) []mx.TLSA {
	var out []mx.TLSA
	for _, r := range recs {
		if (r.Usage == 2 || r.Usage == 3) && r.Selector <= 1 && r.MatchingType <= 2 {
			out = append(out, r)
		}
	}
	return out
}

// verifyDANE checks a presented chain against TLSA records (RFC 7672 §3):
// DANE-EE matches the leaf, with no name or expiry check; DANE-TA matches a
// certificate of the chain that must then issue the leaf, whose name must
// be the MX host.
func verifyDANE(chain []*x509.Certificate, recs []mx.TLSA, host string) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w: DANE: no certificate", ErrTLSRequired)
	}
	for _, r := range recs {
		if r.Usage == 3 && tlsaMatch(r, chain[0]) {
			return nil
		}
	}
	for _, r := range recs {
		if r.Usage != 2 {
			continue
		}
		for _, ta := range chain[1:] {
			if !tlsaMatch(r, ta) {
				continue
			}
			roots := x509.NewCertPool()
			roots.AddCert(ta)
			if verifyPKIX(chain, roots, host) == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: DANE: certificate of %s matches no TLSA record", ErrTLSRequired, host)
}

func tlsaMatch(r mx.TLSA, cert *x509.Certificate) bool {
	data := cert.Raw
	if r.Selector == 1 {
		data = cert.RawSubjectPublicKeyInfo
	}
	switch r.MatchingType {
	case 0:
		return bytes.Equal(data, r.Data)
	case 1:
		sum := sha256.Sum256(data)
		return bytes.Equal(sum[:], r.Data)
	case 2:
		sum := sha512.Sum512(data)
		return bytes.Equal(sum[:], r.Data)
	}
	return false
}
