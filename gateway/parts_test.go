package gateway

import (
	"io"
	"mime/multipart"
)

// multipartParts reads a multipart body as Parts, as the api package does.
type multipartParts struct{ r *multipart.Reader }

func (m multipartParts) Next() (*Part, error) {
	p, err := m.r.NextPart()
	if err != nil {
		return nil, err
	}
	return &Part{Name: p.FormName(), Filename: p.FileName(), Body: p}, nil
}

func partsOf(r io.Reader, boundary string) Parts {
	return multipartParts{multipart.NewReader(r, boundary)}
}
