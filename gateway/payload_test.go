package gateway

import "testing"

// TestPayloadBytes pins the bytes of payloads with their head: entries
// written before the payloads were typed structs spliced "idem" and
// "packet_prev" in front of the payload's own fields, and must read alike.
func TestPayloadBytes(t *testing.T) {
	prev := func(n int64) *int64 { return &n }
	tests := []struct {
		pl   payload
		h    head
		want string
	}{
		{&deliveredPayload{}, head{}, `{}`},
		{&deliveredPayload{}, head{PacketPrev: prev(0)}, `{"packet_prev":0}`},
		{&reasonPayload{Reason: "请补正"}, head{PacketPrev: prev(7), Idem: &idemPayload{Key: "k", Body: "f"}},
			`{"idem":{"key":"k","body":"f"},"packet_prev":7,"reason":"请补正"}`},
		{&reasonPayload{}, head{PacketPrev: prev(2)}, `{"packet_prev":2}`},
		{&licensePayload{materialDigest: materialDigest{Kind: "license", SHA256: "ab", Size: 3, ContentType: TypePDF}}, head{PacketPrev: prev(3)},
			`{"packet_prev":3,"kind":"license","sha256":"ab","size":3,"content_type":"application/pdf"}`},
		{&licensePayload{materialDigest: materialDigest{Kind: "license", SHA256: "ab", Size: 3, ContentType: TypePDF}, Filename: "license.pdf"}, head{PacketPrev: prev(3)},
			`{"packet_prev":3,"kind":"license","sha256":"ab","size":3,"content_type":"application/pdf","filename":"license.pdf"}`},
		{&downloadedPayload{What: "bundle"}, head{PacketPrev: prev(4)}, `{"packet_prev":4,"what":"bundle"}`},
		{&supplementedPayload{Manifest: "m"}, head{Idem: &idemPayload{Key: "k", Body: "f"}, PacketPrev: prev(9)},
			`{"idem":{"key":"k","body":"f"},"packet_prev":9,"manifest":"m","materials":null}`},
	}
	for _, tt := range tests {
		tt.pl.setHead(tt.h)
		b, err := encodePayload(tt.pl)
		if err != nil || string(b) != tt.want {
			t.Errorf("%T: %s, %v; want %s", tt.pl, b, err, tt.want)
		}
	}
}
