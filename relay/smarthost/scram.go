package smarthost

import (
	"fmt"

	"github.com/emersion/go-sasl"
	"github.com/xdg-go/scram"
)

// scramClient runs SCRAM-SHA-256 (RFC 5802, RFC 7677) as a SASL client.
// go-sasl has no SCRAM; github.com/xdg-go/scram does the cryptography and
// verifies the server's final message, so a server that does not know the
// password cannot pass for one that does.
type scramClient struct {
	conv *scram.ClientConversation
}

func newSCRAM(user, pass string) (sasl.Client, error) {
	c, err := scram.SHA256.NewClient(user, pass, "")
	if err != nil {
		return nil, fmt.Errorf("smarthost: SCRAM-SHA-256: %w", err)
	}
	return &scramClient{conv: c.NewConversation()}, nil
}

func (s *scramClient) Start() (string, []byte, error) {
	first, err := s.conv.Step("")
	return "SCRAM-SHA-256", []byte(first), err
}

func (s *scramClient) Next(challenge []byte) ([]byte, error) {
	if s.conv.Done() {
		return nil, sasl.ErrUnexpectedServerChallenge
	}
	resp, err := s.conv.Step(string(challenge))
	if err != nil {
		return nil, err
	}
	return []byte(resp), nil
}
