package gateway

import (
	"io"
	"mime/multipart"
)

func partsOf(r io.Reader, boundary string) Parts {
	return multipartParts{multipart.NewReader(r, boundary)}
}
