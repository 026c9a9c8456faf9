package seal

import (
	"bytes"
	"testing"

	"filippo.io/age"
)

// cipherSize drives the quota and Due: it must match what age writes.
func TestCipherSizeMatchesAge(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var hdr countWriter
	if _, err := age.Encrypt(&hdr, id.Recipient()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 100, 64<<10 - 1, 64 << 10, 64<<10 + 1, 3 << 16, 3<<16 + 7, 1 << 20} {
		var buf bytes.Buffer
		w, err := age.Encrypt(&buf, id.Recipient())
		if err != nil {
			t.Fatal(err)
		}
		w.Write(make([]byte, n))
		w.Close()
		if got := cipherSize(hdr.n, int64(n)); got != int64(buf.Len()) {
			t.Errorf("cipherSize(%d, %d) = %d; want %d (what age wrote)", hdr.n, n, got, buf.Len())
		}
	}
}
