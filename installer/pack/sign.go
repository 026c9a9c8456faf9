package pack

import (
	"fmt"
	"os/exec"
)

// Signer signs Windows files (carrel.exe, the MSI) with Authenticode
// through osslsigncode.
type Signer struct {
	Cert string // PEM certificate (chain) file
	Key  string // PEM private key file
	// Timestamp is an RFC 3161 time-stamping URL; with it the signature
	// stays valid after the certificate expires. Empty: no time stamp
	// (it needs the network).
	Timestamp string
}

// Sign writes a signed copy of in to out.
func (s *Signer) Sign(in, out string) error {
	args := []string{"sign", "-certs", s.Cert, "-key", s.Key, "-h", "sha256",
		"-n", "carrel", "-i", "https://github.com/carrel-lib/carrel"}
	if s.Timestamp != "" {
		args = append(args, "-ts", s.Timestamp)
	}
	args = append(args, "-in", in, "-out", out)
	if b, err := exec.Command("osslsigncode", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("osslsigncode sign %s: %v: %s", in, err, b)
	}
	return nil
}
