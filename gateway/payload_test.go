package gateway

import "testing"

// TestPayloadBytes pins the bytes of payloads with their head. Payloads are
// canonical (keys sorted bytewise); entries written before that kept the
// struct's field order and are still read alike (apply decodes by name).
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
			`{"idem":{"body":"f","key":"k"},"packet_prev":7,"reason":"请补正"}`},
		{&reasonPayload{}, head{PacketPrev: prev(2)}, `{"packet_prev":2}`},
		{&licensePayload{materialDigest: materialDigest{Kind: "license", SHA256: "ab", Size: 3, ContentType: TypePDF}}, head{PacketPrev: prev(3)},
			`{"content_type":"application/pdf","kind":"license","packet_prev":3,"sha256":"ab","size":3}`},
		{&licensePayload{materialDigest: materialDigest{Kind: "license", SHA256: "ab", Size: 3, ContentType: TypePDF}, Filename: "license.pdf"}, head{PacketPrev: prev(3)},
			`{"content_type":"application/pdf","filename":"license.pdf","kind":"license","packet_prev":3,"sha256":"ab","size":3}`},
		{&downloadedPayload{What: "bundle"}, head{PacketPrev: prev(4)}, `{"packet_prev":4,"what":"bundle"}`},
		{&supplementedPayload{Manifest: "m"}, head{Idem: &idemPayload{Key: "k", Body: "f"}, PacketPrev: prev(9)},
			`{"idem":{"body":"f","key":"k"},"manifest":"m","materials":null,"packet_prev":9}`},
	}
	for _, tt := range tests {
		tt.pl.setHead(tt.h)
		b, err := encodePayload(tt.pl)
		if err != nil || string(b) != tt.want {
			t.Errorf("%T: %s, %v; want %s", tt.pl, b, err, tt.want)
		}
	}
}
