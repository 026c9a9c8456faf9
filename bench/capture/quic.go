//go:build linux

package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
)

// quicClient seals client Initial packets of QUIC v1 (RFC 9001 section 5)
// for the mix: what a browser's first flight of an HTTP/3 connection looks
// like on the wire.
type quicClient struct {
	dcid []byte
	aead cipher.AEAD
	hp   cipher.Block
	iv   []byte
	pn   uint16
}

func newQUICClient(dcid []byte) *quicClient {
	salt := []byte{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a}
	initial, _ := hkdf.Extract(sha256.New, dcid, salt)
	client := expandLabel(initial, "client in", 32)
	block, _ := aes.NewCipher(expandLabel(client, "quic key", 16))
	aead, _ := cipher.NewGCM(block)
	hp, _ := aes.NewCipher(expandLabel(client, "quic hp", 16))
	return &quicClient{dcid: dcid, aead: aead, hp: hp, iv: expandLabel(client, "quic iv", 12)}
}

func expandLabel(secret []byte, label string, n int) []byte {
	info := binary.BigEndian.AppendUint16(nil, uint16(n))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "+label...)
	info = append(info, 0)
	out, _ := hkdf.Expand(sha256.New, secret, string(info), n)
	return out
}

// initial returns an Initial packet carrying data at CRYPTO offset off,
// padded to a 1200-byte datagram.
func (c *quicClient) initial(off int, data []byte) []byte {
	hdr := []byte{0xc1, 0, 0, 0, 1, byte(len(c.dcid))}
	hdr = append(hdr, c.dcid...)
	hdr = append(hdr, 0, 0) // empty source connection ID, no token
	payload := []byte{0x06}
	payload = binary.BigEndian.AppendUint32(payload, 0x80000000|uint32(off))
	payload = binary.BigEndian.AppendUint16(payload, 0x4000|uint16(len(data)))
	payload = append(payload, data...)
	if n := 1200 - len(hdr) - 2 - 2 - len(payload) - 16; n > 0 {
		payload = append(payload, make([]byte, n)...)
	}
	length := 2 + len(payload) + 16
	hdr = append(hdr, 0x40|byte(length>>8), byte(length))
	pnOff := len(hdr)
	hdr = binary.BigEndian.AppendUint16(hdr, c.pn)
	nonce := append([]byte(nil), c.iv...)
	nonce[10] ^= byte(c.pn >> 8)
	nonce[11] ^= byte(c.pn)
	c.pn++
	pkt := c.aead.Seal(hdr, nonce, payload, hdr)
	var mask [16]byte
	c.hp.Encrypt(mask[:], pkt[pnOff+4:pnOff+20])
	pkt[0] ^= mask[0] & 0x0f
	pkt[pnOff] ^= mask[1]
	pkt[pnOff+1] ^= mask[2]
	return pkt
}
