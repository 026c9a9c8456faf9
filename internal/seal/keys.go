package seal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/carrel-lib/carrel/internal/keyfile"
)

// ParseRecipient parses one of the head librarian's public keys. Only
// X25519 recipients (age1…) are accepted: they are what `carrel keygen` and
// `age-keygen` make, and what every age version (Debian's age CLI included)
// decrypts.
func ParseRecipient(s string) (*age.X25519Recipient, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "age1pq1") || !strings.HasPrefix(s, "age1") {
		return nil, fmt.Errorf("recipient %q is not an age X25519 public key (age1…)", s)
	}
	r, err := age.ParseX25519Recipient(s)
	if err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	return r, nil
}

// ParseRecipients parses the configured recipients; at least one is needed.
func ParseRecipients(list []string) ([]age.Recipient, error) {
	if len(list) == 0 {
		return nil, errors.New("no recipient: the head librarian's public key (age1…) must be configured")
	}
	out := make([]age.Recipient, 0, len(list))
	for i, s := range list {
		r, err := ParseRecipient(s)
		if err != nil {
			return nil, fmt.Errorf("recipient %d: %w", i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// maxIdentityFile bounds what LoadIdentities reads: an identity line is 74
// bytes, so a real file is tiny.
const maxIdentityFile = 64 << 10

// LoadIdentities reads an age identity file as written by `carrel keygen`
// or `age-keygen`: X25519 secret keys one per line, blank lines and lines
// starting with '#' ignored, CRLF line ends and a UTF-8 byte order mark
// (Windows editors) tolerated. It is for the exporter; seal never decrypts.
func LoadIdentities(path string) ([]*age.X25519Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading identity file: %w", err)
	}
	defer f.Close()
	ids, err := ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return ids, nil
}

// ParseIdentities parses the content of an identity file (see
// LoadIdentities). Errors name the line but never echo key material.
func ParseIdentities(r io.Reader) ([]*age.X25519Identity, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxIdentityFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxIdentityFile {
		return nil, fmt.Errorf("larger than %d bytes: not an identity file", maxIdentityFile)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty: it holds no key (an interrupted copy or keygen?); use the copy of the head librarian's key kept off the PC")
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var ids []*age.X25519Identity
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxIdentityFile+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "AGE-SECRET-KEY-1") {
			return nil, fmt.Errorf("line %d: not an age X25519 secret key (AGE-SECRET-KEY-1…); post-quantum, plugin and SSH keys are not supported", n)
		}
		id, err := age.ParseX25519Identity(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errors.New("no secret key (AGE-SECRET-KEY-1…) in it")
	}
	return ids, nil
}

// FormatIdentity returns id in the text form age-keygen writes.
func FormatIdentity(id *age.X25519Identity, created time.Time) []byte {
	return fmt.Appendf(nil, "# created: %s\n# public key: %s\n%s\n",
		created.Format(time.RFC3339), id.Recipient(), id)
}

// WriteIdentityFile generates an X25519 identity for the head librarian and
// writes it to path, readable by the current account only (0600; on
// Windows the current user and Administrators), whole or not at all and
// never replacing an existing file, not even through a symlink (package
// keyfile): an interrupted keygen leaves no file, never an empty one. It
// returns the public key to put in the config.
func WriteIdentityFile(path string, now time.Time) (recipient string, err error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", fmt.Errorf("generating identity: %w", err)
	}
	sddl, err := identitySDDL()
	if err != nil {
		return "", fmt.Errorf("creating identity file: %w", err)
	}
	if err := keyfile.Create(path, FormatIdentity(id, now), sddl); err != nil {
		return "", fmt.Errorf("creating identity file: %w", err)
	}
	return id.Recipient().String(), nil
}
