package api_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/json"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"tongban/api/apitest"
	"tongban/gateway"
)

// biError is the JSON error format.
type biError struct {
	Error *struct {
		Code      string            `json:"code"`
		Message   string            `json:"message"`
		Fields    map[string]string `json:"fields"`
		RequestID string            `json:"request_id"`
	} `json:"error"`
}

// biCodes are the error codes by status.
var biCodes = map[int]string{
	400: "malformed", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
	413: "too_large", 415: "unsupported_type", 422: "invalid",
}

// biReq sends a request to e; id is the prepared packet's id, if any.
type biReq func(e *apitest.Env, id string) (int, []byte)

type biCase struct {
	name  string
	small bool   // on the gateway whose catalogue caps application_form at 1000 bytes
	state string // a fresh packet in this state is prepared, its id passed to req
	id    string // else this id is passed to req
	req   biReq
	want  int
	field string // must be a key of error.fields
}

// biSubmit submits the company-setup packet after edit changed it.
func biSubmit(edit func(m *apitest.Manifest, files []apitest.File) []apitest.File) biReq {
	return func(e *apitest.Env, _ string) (int, []byte) {
		m, files := apitest.CompanySetup()
		files = edit(&m, files)
		return e.Submit(azOrigin, m, files)
	}
}

// biApplicant submits the company-setup packet for another applicant.
func biApplicant(typ, id string) biReq {
	return biSubmit(func(m *apitest.Manifest, files []apitest.File) []apitest.File {
		m.Applicant = map[string]any{"type": typ, "name": "张三", "id": id}
		return files
	})
}

// biResident submits a household-registration certificate request (a
// resident item) for the resident ID number id.
func biResident(id string) biReq {
	return func(e *apitest.Env, _ string) (int, []byte) {
		files := []apitest.File{
			{Kind: "consent_form", Filename: "同意书.pdf", Data: apitest.PDF(1200)},
			{Kind: "applicant_id", Filename: "身份证.jpg", Data: apitest.JPEG(1500)},
		}
		m := apitest.Manifest{Item: "RES-HUKOU-CERT", Destination: "qingpu-window",
			Applicant: map[string]any{"type": "person", "name": "张三", "id": id}}
		for _, f := range files {
			m.Materials = append(m.Materials, apitest.MaterialSpec{Kind: f.Kind, Filename: f.Filename})
		}
		return e.Submit(azOrigin, m, files)
	}
}

// biFile replaces the data of the material of kind (and drops its declared digest).
func biFile(kind string, data []byte) biReq {
	return biSubmit(func(m *apitest.Manifest, files []apitest.File) []apitest.File {
		for i := range files {
			if files[i].Kind == kind {
				files[i].Data = data
				m.Materials[i].SHA256 = ""
			}
		}
		return files
	})
}

// biParts posts raw parts to path as who, built from the company-setup
// packet's parts by edit.
func biParts(path, who string, edit func(parts []apitest.Part) []apitest.Part) biReq {
	return func(e *apitest.Env, id string) (int, []byte) {
		m, files := apitest.CompanySetup()
		body, ct := apitest.Multipart(edit(apitest.SubmissionParts(m, files)))
		return e.Do("POST", strings.ReplaceAll(path, "{id}", id), who, body, ct)
	}
}

// biRawParts posts exactly parts to path as who.
func biRawParts(path, who string, parts ...apitest.Part) biReq {
	return biParts(path, who, func([]apitest.Part) []apitest.Part { return parts })
}

// biBody posts a raw body with a content type.
func biBody(method, path, who, ct string, body []byte) biReq {
	return func(e *apitest.Env, id string) (int, []byte) {
		return e.Do(method, strings.ReplaceAll(path, "{id}", id), who, bytes.NewReader(body), ct)
	}
}

func biAct(who, action, reason string) biReq {
	return func(e *apitest.Env, id string) (int, []byte) {
		return e.JSON("POST", "/v1/packets/"+id+"/actions", who, map[string]string{"action": action, "reason": reason})
	}
}

func biGet(path, who string) biReq {
	return func(e *apitest.Env, id string) (int, []byte) {
		return e.Do("GET", strings.ReplaceAll(path, "{id}", id), who, nil, "")
	}
}

// biManifestPart is the first part with a literal manifest.
func biManifestPart(manifest string) biReq {
	return biParts("/v1/packets", azOrigin, func(parts []apitest.Part) []apitest.Part {
		parts[0].Data = []byte(manifest)
		return parts
	})
}

// biZip returns a ZIP archive of the given entries (name, content).
func biZip(entries ...string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i+1 < len(entries); i += 2 {
		w, _ := zw.Create(entries[i])
		io.WriteString(w, entries[i+1])
	}
	zw.Close()
	return buf.Bytes()
}

// biBombs returns OFD-looking archives whose one entry inflates to 100 MiB
// of zeros (about 100 KiB deflated): OFD.xml with its sizes in a trailing
// data descriptor (the walker must inflate to find them), OFD.xml with its
// sizes declared in the header, and a resource entry beside a valid OFD.xml.
var biBombs = sync.OnceValues(func() ([]byte, [][]byte) {
	const size = 100 << 20
	var def bytes.Buffer
	fw, _ := flate.NewWriter(&def, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	crc := crc32.NewIEEE()
	for range size / len(zeros) {
		fw.Write(zeros)
		crc.Write(zeros)
	}
	fw.Close()
	build := func(name string, flags uint16, withOFD bool) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		if withOFD {
			w, _ := zw.Create("OFD.xml")
			io.WriteString(w, `<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"/>`)
		}
		w, _ := zw.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Deflate, Flags: flags, CRC32: crc.Sum32(),
			CompressedSize64: uint64(def.Len()), UncompressedSize64: size})
		w.Write(def.Bytes())
		zw.Close()
		return buf.Bytes()
	}
	return def.Bytes(), [][]byte{build("OFD.xml", 0x8, false), build("OFD.xml", 0, false), build("Doc_0/Res/image.bin", 0, true)}
})

func biBomb(i int) []byte {
	_, bombs := biBombs()
	return bombs[i]
}

// biSmallCatalog caps ENT-SETUP's application_form at 1000 bytes.
func biSmallCatalog() *gateway.Catalog {
	c := gateway.DefaultCatalog()
	it, _ := c.Item("ENT-SETUP")
	m, _ := it.Material("application_form")
	m.MaxBytes = 1000
	return c
}

// biOpaque hides a reader's type, so the client sends it chunked, without
// a Content-Length the server could refuse up front.
type biOpaque struct{ io.Reader }

func biCases() []biCase {
	digestOf := func(b []byte) string { return apitest.SHA256(b) }
	setName := func(i int, manifest, part string) biReq {
		return biSubmit(func(m *apitest.Manifest, files []apitest.File) []apitest.File {
			m.Materials[i].Filename, files[i].Filename = manifest, part
			return files
		})
	}
	html := []byte("<!DOCTYPE html><html><body><script>alert(1)</script></body></html>")
	docx := biZip("[Content_Types].xml", `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`,
		"word/document.xml", `<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"/>`)
	licence := func(parts ...apitest.Part) biReq { return biRawParts("/v1/packets/{id}/license", azDest, parts...) }
	supplement := func(parts ...apitest.Part) biReq {
		return biRawParts("/v1/packets/{id}/supplements", azOrigin, parts...)
	}
	supplementM := func(ms []apitest.MaterialSpec, files ...apitest.File) biReq {
		return biRawParts("/v1/packets/{id}/supplements", azOrigin, apitest.SubmissionParts(map[string]any{"materials": ms}, files)...)
	}
	actBody := func(ct, body string) biReq {
		return biBody("POST", "/v1/packets/{id}/actions", azDest, ct, []byte(body))
	}

	return []biCase{
		// Applicant identifiers (docs/domain.md's invalid examples).
		{name: "credit code with a wrong check character", req: biApplicant("enterprise", "91310118MA1G00011A"), want: 422, field: "applicant.id"},
		{name: "credit code with a transposition", req: biApplicant("enterprise", "91310118MA1G00101T"), want: 422, field: "applicant.id"},
		{name: "credit code with the letter O", req: biApplicant("enterprise", "91310118MA1G0O011T"), want: 422, field: "applicant.id"},
		{name: "credit code of 17 characters", req: biApplicant("enterprise", "9131011MA1G00011T"), want: 422, field: "applicant.id"},
		{name: "credit code with the letter S", req: biApplicant("enterprise", "91310118MA1GS0011T"), want: 422, field: "applicant.id"},
		{name: "resident ID born on 30 February", req: biResident("330421199902300012"), want: 422, field: "applicant.id"},
		{name: "resident ID born in the future", req: biResident("310118203001010019"), want: 422, field: "applicant.id"},
		{name: "resident ID born in month 13", req: biResident("320509198513120020"), want: 422, field: "applicant.id"},
		{name: "resident ID with a wrong check digit", req: biResident("110105194912310020"), want: 422, field: "applicant.id"},
		{name: "resident ID given as a credit code", req: biApplicant("person", "91310118MA1G00011T"), want: 422, field: "applicant.id"},
		{name: "unknown applicant type", req: biApplicant("robot", "91310118MA1G00011T"), want: 422, field: "applicant.type"},
		{name: "applicant without a name", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File {
			m.Applicant["name"] = ""
			return f
		}), want: 422, field: "applicant.name"},

		// Item and destination.
		{name: "unknown item", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File { m.Item = "ENT-NOPE"; return f }), want: 422, field: "item"},
		{name: "unknown destination", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File { m.Destination = "mars-amr"; return f }), want: 422, field: "destination"},
		{name: "destination is the origin", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File { m.Destination = "jiashan-window"; return f }), want: 422, field: "destination"},
		{name: "destination does not handle the item", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File {
			m.Destination = "wujiang-medicare"
			return f
		}), want: 422, field: "destination"},
		{name: "destination does not review", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File { m.Destination = "yrd-audit"; return f }), want: 422, field: "destination"},

		// The manifest's list of materials.
		{name: "missing required material", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File {
			m.Materials = m.Materials[:5]
			return f[:5]
		}), want: 422, field: "materials"},
		{name: "material kind not in the item", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File {
			m.Materials = append(m.Materials, apitest.MaterialSpec{Kind: "food_safety_rules", Filename: "rules.pdf"})
			return append(f, apitest.File{Kind: "food_safety_rules", Filename: "rules.pdf", Data: apitest.PDF(500)})
		}), want: 422, field: "materials[6].kind"},
		{name: "material listed twice", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File {
			m.Materials = append(m.Materials, m.Materials[1])
			return f
		}), want: 422, field: "materials[6].kind"},
		{name: "no materials listed", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File {
			m.Materials = nil
			return nil
		}), want: 422, field: "materials"},
		{name: "more materials than a packet holds", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File {
			for range 40 {
				m.Materials = append(m.Materials, m.Materials[0])
			}
			return f
		}), want: 422, field: "materials"},

		// File contents: the bytes decide.
		{name: "HTML as a PDF material", req: biFile("application_form", html), want: 415, field: "application_form"},
		{name: "plain text as a PDF material", req: biFile("consent_form", []byte("just some words, no magic here\n")), want: 415, field: "consent_form"},
		{name: "DOCX as an OFD material", req: biFile("articles", docx), want: 415, field: "articles"},
		{name: "ZIP without OFD.xml", req: biFile("articles", biZip("Doc_0/Document.xml", "<x/>")), want: 415, field: "articles"},
		{name: "OFD.xml whose root is not OFD", req: biFile("articles", biZip("OFD.xml", "<html/>")), want: 415, field: "articles"},
		{name: "zip bomb: OFD.xml of 100 MiB with a data descriptor", req: biFile("articles", biBomb(0)), want: 422, field: "articles"},
		{name: "zip bomb: OFD.xml of 100 MiB declared", req: biFile("articles", biBomb(1)), want: 422, field: "articles"},
		{name: "zip bomb: resource of 100 MiB beside OFD.xml", req: biFile("articles", biBomb(2)), want: 422, field: "articles"},
		{name: "empty file", req: biFile("application_form", nil), want: 422, field: "application_form"},
		{name: "file larger than the catalogue allows", small: true, req: biFile("application_form", apitest.PDF(1001)), want: 413, field: "application_form"},
		{name: "body larger than the upload cap", small: true, req: biFile("appointments", apitest.PDF(300<<10)), want: 413},
		{name: "chunked body larger than the upload cap", small: true, req: func(e *apitest.Env, _ string) (int, []byte) {
			m, files := apitest.CompanySetup()
			files[5].Data, m.Materials[5].SHA256 = apitest.PDF(300<<10), ""
			body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
			return e.Do("POST", "/v1/packets", azOrigin, biOpaque{body}, ct)
		}, want: 413},

		// Declared digests.
		{name: "declared digest does not match", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File {
			m.Materials[1].SHA256 = digestOf([]byte("something else"))
			return f
		}), want: 422, field: "application_form"},
		{name: "declared digest of another material", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File {
			m.Materials[1].SHA256 = m.Materials[0].SHA256 // stored already, by the same request
			return f
		}), want: 422, field: "application_form"},
		{name: "declared digest not hex", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File {
			m.Materials[1].SHA256 = strings.Repeat("zz", 32)
			return f
		}), want: 422, field: "materials[1].sha256"},
		{name: "declared digest in upper case", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File {
			m.Materials[1].SHA256 = strings.ToUpper(m.Materials[1].SHA256)
			return f
		}), want: 422, field: "materials[1].sha256"},
		{name: "declared digest too short", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File {
			m.Materials[1].SHA256 = m.Materials[1].SHA256[:40]
			return f
		}), want: 422, field: "materials[1].sha256"},

		// File names.
		{name: "file name .. in the manifest", req: setName(1, "..", "x.pdf"), want: 422, field: "materials[1].filename"},
		{name: "file name ../ in the manifest", req: setName(1, "../", "x.pdf"), want: 422, field: "materials[1].filename"},
		{name: "file name a/.. in the manifest", req: setName(1, "a/..", "x.pdf"), want: 422, field: "materials[1].filename"},
		{name: "file name of control characters", req: setName(1, "\x00\u202e\n", "x.pdf"), want: 422, field: "materials[1].filename"},
		{name: "file name longer than 255 bytes", req: setName(1, strings.Repeat("长", 90)+".pdf", strings.Repeat("长", 90)+".pdf"), want: 422, field: "materials[1].filename"},
		{name: "empty file name in the manifest", req: setName(1, "", "x.pdf"), want: 422, field: "materials[1].filename"},
		{name: "part file name .. against the manifest's", req: setName(1, "x.pdf", ".."), want: 422, field: "application_form"},
		{name: "part file name differs from the manifest's", req: setName(1, "x.pdf", "y.pdf"), want: 422, field: "application_form"},
		{name: "file part without a file name", req: setName(1, "x.pdf", ""), want: 422, field: "application_form"},

		// The multipart framing.
		{name: "part not listed in the manifest", req: biParts("/v1/packets", azOrigin, func(p []apitest.Part) []apitest.Part {
			return append(p, apitest.Part{Name: "power_of_attorney", Filename: "poa.pdf", Data: apitest.PDF(500)})
		}), want: 422, field: "power_of_attorney"},
		{name: "same part twice", req: biParts("/v1/packets", azOrigin, func(p []apitest.Part) []apitest.Part {
			return append(p, p[2])
		}), want: 422, field: "application_form"},
		{name: "listed material without its part", req: biParts("/v1/packets", azOrigin, func(p []apitest.Part) []apitest.Part {
			return p[:6]
		}), want: 422, field: "appointments"},
		{name: "manifest after the files", req: biParts("/v1/packets", azOrigin, func(p []apitest.Part) []apitest.Part {
			return append(p[1:], p[0])
		}), want: 400, field: "manifest"},
		{name: "manifest twice", req: biParts("/v1/packets", azOrigin, func(p []apitest.Part) []apitest.Part {
			return append([]apitest.Part{p[0], p[0]}, p[1:]...)
		}), want: 400, field: "manifest"},
		{name: "manifest between the files", req: biParts("/v1/packets", azOrigin, func(p []apitest.Part) []apitest.Part {
			return append(p[:3:3], append([]apitest.Part{p[0]}, p[3:]...)...)
		}), want: 400, field: "manifest"},
		{name: "malformed JSON manifest", req: biManifestPart(`{"item": "ENT-SETUP", `), want: 400, field: "manifest"},
		{name: "manifest with trailing data", req: biManifestPart(`{"item": "ENT-SETUP"} {}`), want: 400, field: "manifest"},
		{name: "manifest that is an array", req: biManifestPart(`["ENT-SETUP", "qingpu-amr"]`), want: 400, field: "manifest"},
		{name: "manifest with materials of the wrong type", req: biManifestPart(`{"item": "ENT-SETUP", "materials": "all of them"}`), want: 400, field: "manifest"},
		{name: "manifest larger than 64 KiB", req: biSubmit(func(m *apitest.Manifest, f []apitest.File) []apitest.File {
			m.Applicant["name"] = strings.Repeat("名", 25<<10)
			return f
		}), want: 413, field: "manifest"},
		{name: "body without parts", req: biRawParts("/v1/packets", azOrigin), want: 400, field: "manifest"},
		{name: "empty body", req: biBody("POST", "/v1/packets", azOrigin, "multipart/form-data; boundary=xyz", nil), want: 400},
		{name: "body cut off in a file", req: func(e *apitest.Env, _ string) (int, []byte) {
			m, files := apitest.CompanySetup()
			body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
			b := body.Bytes()
			cut := bytes.Index(b, files[1].Data) + len(files[1].Data)/2 // in application_form's bytes
			return e.Do("POST", "/v1/packets", azOrigin, bytes.NewReader(b[:cut]), ct)
		}, want: 400},
		{name: "JSON body to POST /v1/packets", req: biBody("POST", "/v1/packets", azOrigin, "application/json", []byte(`{"item":"ENT-SETUP"}`)), want: 415},
		{name: "multipart without a boundary", req: biBody("POST", "/v1/packets", azOrigin, "multipart/form-data", []byte("--x\r\n")), want: 415},
		{name: "urlencoded body to POST /v1/packets", req: biBody("POST", "/v1/packets", azOrigin, "application/x-www-form-urlencoded", []byte("item=ENT-SETUP")), want: 415},

		// Workflow state.
		{name: "approve a submitted packet", state: "submitted", req: biAct(azDest, "approve", "ok"), want: 409},
		{name: "return a submitted packet", state: "submitted", req: biAct(azDest, "return", "请补正"), want: 409},
		{name: "receive a received packet", state: "received", req: biAct(azDest, "receive", ""), want: 409},
		{name: "deliver before the licence", state: "approved", req: biAct(azOrigin, "deliver", ""), want: 409},
		{name: "approve a rejected packet", state: "rejected", req: biAct(azDest, "approve", ""), want: 409},
		{name: "deliver a delivered packet", state: "delivered", req: biAct(azOrigin, "deliver", ""), want: 409},
		{name: "supplement a received packet", state: "received", req: func(e *apitest.Env, id string) (int, []byte) {
			body, ct := azSupplementBody()
			return e.Do("POST", "/v1/packets/"+id+"/supplements", azOrigin, body, ct)
		}, want: 409},
		{name: "licence on a received packet", state: "received", req: func(e *apitest.Env, id string) (int, []byte) {
			body, ct := azLicenseBody()
			return e.Do("POST", "/v1/packets/"+id+"/license", azDest, body, ct)
		}, want: 409},
		{name: "second licence", state: "license_issued", req: func(e *apitest.Env, id string) (int, []byte) {
			body, ct := azLicenseBody()
			return e.Do("POST", "/v1/packets/"+id+"/license", azDest, body, ct)
		}, want: 409},

		// Action bodies.
		{name: "unknown action", state: "submitted", req: biAct(azDest, "archive", ""), want: 422, field: "action"},
		{name: "empty action", state: "submitted", req: biAct(azDest, "", ""), want: 422, field: "action"},
		{name: "return without a reason", state: "received", req: biAct(azDest, "return", ""), want: 422, field: "reason"},
		{name: "reject with a blank reason", state: "received", req: biAct(azDest, "reject", " \t\n "), want: 422, field: "reason"},
		{name: "reason longer than 4 KiB", state: "received", req: biAct(azDest, "return", strings.Repeat("补", 2000)), want: 422, field: "reason"},
		{name: "malformed action JSON", state: "submitted", req: actBody("application/json", `{"action": "receive"`), want: 400},
		{name: "action JSON with trailing data", state: "submitted", req: actBody("application/json", `{"action": "receive"} {"action": "approve"}`), want: 400},
		{name: "action of the wrong type", state: "submitted", req: actBody("application/json", `{"action": ["receive"]}`), want: 400},
		{name: "action JSON null", state: "submitted", req: actBody("application/json", `null`), want: 422, field: "action"},
		{name: "action with a text/plain body", state: "submitted", req: actBody("text/plain", `{"action": "receive"}`), want: 415},
		{name: "action as a form", state: "submitted", req: actBody("application/x-www-form-urlencoded", `action=receive`), want: 415},
		{name: "action without a content type", state: "submitted", req: actBody("", `{"action": "receive"}`), want: 415},
		{name: "action body larger than 64 KiB", state: "received", req: actBody("application/json", `{"action": "return", "reason": "`+strings.Repeat("x", 70<<10)+`"}`), want: 413},

		// Supplements and licences.
		{name: "supplement of a kind not in the item", state: "correction_requested", req: supplement(apitest.Part{Name: "food_safety_rules", Filename: "r.pdf", Data: apitest.PDF(500)}), want: 422, field: "food_safety_rules"},
		{name: "supplement that is HTML", state: "correction_requested", req: supplement(apitest.Part{Name: "articles", Filename: "a.pdf", Data: html}), want: 415, field: "articles"},
		{name: "supplement without parts", state: "correction_requested", req: supplement(), want: 422, field: "materials"},
		{name: "supplement named ..", state: "correction_requested", req: supplement(apitest.Part{Name: "articles", Filename: "..", Data: apitest.PDF(500)}), want: 422, field: "articles"},
		{name: "supplement as JSON", state: "correction_requested", req: biBody("POST", "/v1/packets/{id}/supplements", azOrigin, "application/json", []byte(`{}`)), want: 415},
		{name: "licence in a part of another name", state: "approved", req: licence(apitest.Part{Name: "file", Filename: "l.ofd", Data: apitest.OFD()}), want: 422, field: "license"},
		{name: "licence that is HTML", state: "approved", req: licence(apitest.Part{Name: "license", Filename: "l.pdf", Data: html}), want: 415, field: "license"},
		{name: "licence that is a DOCX", state: "approved", req: licence(apitest.Part{Name: "license", Filename: "l.ofd", Data: docx}), want: 415, field: "license"},
		{name: "empty licence", state: "approved", req: licence(apitest.Part{Name: "license", Filename: "l.pdf"}), want: 422, field: "license"},
		{name: "two licences", state: "approved", req: licence(apitest.Part{Name: "license", Filename: "l.ofd", Data: apitest.OFD()}, apitest.Part{Name: "license", Filename: "m.pdf", Data: apitest.PDF(500)}), want: 422, field: "license"},
		{name: "licence without parts", state: "approved", req: licence(), want: 422, field: "license"},

		// One path receives the files of all three routes: a kind twice and
		// an unsafe file name are refused the same way everywhere.
		{name: "supplement listing a kind twice", state: "correction_requested", req: supplementM(
			[]apitest.MaterialSpec{{Kind: "articles", Filename: "a.pdf"}, {Kind: "articles", Filename: "b.pdf"}},
			apitest.File{Kind: "articles", Filename: "a.pdf", Data: apitest.PDF(500)}, apitest.File{Kind: "articles", Filename: "b.pdf", Data: apitest.PDF(600)}),
			want: 422, field: "materials[1].kind"},
		{name: "supplement sending a listed kind twice", state: "correction_requested", req: supplementM(
			[]apitest.MaterialSpec{{Kind: "articles", Filename: "a.pdf"}},
			apitest.File{Kind: "articles", Filename: "a.pdf", Data: apitest.PDF(500)}, apitest.File{Kind: "articles", Filename: "a.pdf", Data: apitest.PDF(600)}),
			want: 422, field: "articles"},
		{name: "supplement sending a kind twice without a manifest", state: "correction_requested", req: supplement(
			apitest.Part{Name: "articles", Filename: "a.pdf", Data: apitest.PDF(500)}, apitest.Part{Name: "articles", Filename: "b.pdf", Data: apitest.PDF(600)}),
			want: 422, field: "articles"},
		{name: "supplement listing a file name ..", state: "correction_requested", req: supplementM(
			[]apitest.MaterialSpec{{Kind: "articles", Filename: ".."}},
			apitest.File{Kind: "articles", Filename: "..", Data: apitest.PDF(500)}),
			want: 422, field: "materials[0].filename"},
		{name: "supplement part named .. against the manifest's", state: "correction_requested", req: supplementM(
			[]apitest.MaterialSpec{{Kind: "articles", Filename: "a.pdf"}},
			apitest.File{Kind: "articles", Filename: "..", Data: apitest.PDF(500)}),
			want: 422, field: "articles"},
		{name: "supplement part without a file name", state: "correction_requested", req: supplement(apitest.Part{Name: "articles", Data: apitest.PDF(500)}), want: 422, field: "articles"},
		{name: "licence named ..", state: "approved", req: licence(apitest.Part{Name: "license", Filename: "..", Data: apitest.OFD()}), want: 422, field: "license"},
		{name: "licence without a file name", state: "approved", req: licence(apitest.Part{Name: "license", Data: apitest.OFD()}), want: 422, field: "license"},

		// Ledger and query parameters.
		{name: "entry seq that is not a number", req: biGet("/v1/ledger/entries/abc", azAuditor), want: 400, field: "seq"},
		{name: "negative entry seq", req: biGet("/v1/ledger/entries/-1", azAuditor), want: 400, field: "seq"},
		{name: "entry seq beyond the log", req: biGet("/v1/ledger/entries/999999", azAuditor), want: 404},
		{name: "entry seq beyond int64", req: biGet("/v1/ledger/entries/99999999999999999999", azAuditor), want: 400, field: "seq"},
		{name: "inclusion proof beyond the log", req: biGet("/v1/ledger/proofs/inclusion?seq=999999", azAuditor), want: 404},
		{name: "inclusion proof in a tree beyond the log", req: biGet("/v1/ledger/proofs/inclusion?seq=0&size=999999", azAuditor), want: 404},
		{name: "inclusion proof without seq", req: biGet("/v1/ledger/proofs/inclusion", azAuditor), want: 400, field: "seq"},
		{name: "consistency proof beyond the log", req: biGet("/v1/ledger/proofs/consistency?from=1&to=999999", azAuditor), want: 404},
		{name: "consistency proof from a word", req: biGet("/v1/ledger/proofs/consistency?from=one", azAuditor), want: 400, field: "from"},
		{name: "entries of something that is not a packet id", req: biGet("/v1/ledger/entries?packet=../../etc", azAuditor), want: 400, field: "packet"},
		{name: "entries with a negative limit", req: biGet("/v1/ledger/entries?limit=-5", azAuditor), want: 400, field: "limit"},
		{name: "list of an unknown box", req: biGet("/v1/packets?box=sideways", azDest), want: 400, field: "box"},
		{name: "list of an unknown status", req: biGet("/v1/packets?status=lost", azDest), want: 400, field: "status"},

		// Packet ids and paths.
		{name: "packet id that is not an id", req: biGet("/v1/packets/not-an-id", azDest), want: 404},
		{name: "packet id with upper case", req: biGet("/v1/packets/PK-AAAAAAAAAAAAAAAAAAAAAAAAAA", azDest), want: 404},
		{name: "unknown packet id", req: biGet("/v1/packets/pk-aaaaaaaaaaaaaaaaaaaaaaaaaa", azDest), want: 404},
		{name: "action on an id that is not an id", id: "not-an-id", req: biAct(azDest, "receive", ""), want: 404},
		{name: "material not in the packet", state: "submitted", req: biGet("/v1/packets/{id}/materials/food_safety_rules", azDest), want: 404},
		{name: "licence before one was issued", state: "approved", req: biGet("/v1/packets/{id}/materials/license", azDest), want: 404},
		{name: "unknown route", req: biGet("/v1/nothing", azDest), want: 404},
		{name: "wrong method", req: biBody("DELETE", "/v1/packets/{id}", azDest, "", nil), state: "submitted", want: 405},
	}
}

// biOutbox counts the packets in the origin's outbox.
func biOutbox(t *testing.T, e *apitest.Env) int {
	t.Helper()
	code, b := e.Do("GET", "/v1/packets?box=outbox", azOrigin, nil, "")
	var v struct {
		Packets []json.RawMessage `json:"packets"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &v) != nil {
		t.Fatalf("outbox: %d %s", code, b)
	}
	return len(v.Packets)
}

func biStatus(t *testing.T, e *apitest.Env, id string) string {
	t.Helper()
	code, b := e.Do("GET", "/v1/packets/"+id, azOrigin, nil, "")
	var v struct{ Status string }
	if code != http.StatusOK || json.Unmarshal(b, &v) != nil {
		t.Fatalf("packet %s: %d %s", id, code, b)
	}
	return v.Status
}

// TestBadInputTable sends requests that must be refused and checks for
// each the status, the JSON error format (with the field at fault) and
// that nothing was left behind: no ledger entry, no packet in the origin's
// outbox, no change of state of the packet acted on.
func TestBadInputTable(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	small := apitest.New(t, apitest.Options{Catalog: biSmallCatalog(), MaxUploadBytes: 256 << 10})
	azPacket(e, "qingpu-amr", "submitted") // something in the ledger and the outbox

	cases := biCases()
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	t.Logf("%d cases", len(cases))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			se := azFor(t, e)
			if c.small {
				se = azFor(t, small)
			}
			id, status := c.id, ""
			if c.state != "" {
				id = azPacket(se, "qingpu-amr", c.state)
				status = biStatus(t, se, id)
			}
			size, outbox := se.Ledger.Size(), biOutbox(t, se)

			code, body := c.req(se, id)
			if code != c.want {
				t.Fatalf("status %d, want %d: %.400q", code, c.want, body)
			}
			var eb biError
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error == nil {
				t.Fatalf("not the JSON error format: %.400q", body)
			}
			if eb.Error.Code != biCodes[c.want] || eb.Error.Message == "" || eb.Error.RequestID == "" {
				t.Errorf("error %+v, want code %q with a message and a request id", *eb.Error, biCodes[c.want])
			}
			if c.field != "" && eb.Error.Fields[c.field] == "" {
				t.Errorf("error fields %v lack %q", eb.Error.Fields, c.field)
			}
			if strings.Contains(eb.Error.Message, "/tmp/") || strings.Contains(eb.Error.Message, "storage/fs") {
				t.Errorf("the message names internals: %s", eb.Error.Message)
			}
			if got := se.Ledger.Size(); got != size {
				t.Errorf("the ledger grew by %d entries", got-size)
			}
			if got := biOutbox(t, se); got != outbox {
				t.Errorf("the outbox went from %d to %d packets", outbox, got)
			}
			if id != "" && status != "" {
				if got := biStatus(t, se, id); got != status {
					t.Errorf("the packet went from %s to %s", status, got)
				}
			}
		})
	}
}

// TestBadInputFilenames: client file names are reduced to safe base names
// before they are stored, shown or put into a bundle, so a traversal never
// reaches a zip path or a Content-Disposition.
func TestBadInputFilenames(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	names := map[int][2]string{ // manifest's name, part's name
		1: {"../../x.pdf", "../../x.pdf"},
		3: {`..\..\windows\addr.pdf`, `..\..\windows\addr.pdf`},
		5: {"/etc/passwd", "passwd"},
	}
	for i, n := range names {
		m.Materials[i].Filename, files[i].Filename = n[0], n[1]
	}
	id := e.MustSubmit(azOrigin, m, files)
	code, body := e.Do("GET", "/v1/packets/"+id, azDest, nil, "")
	if code != http.StatusOK {
		t.Fatalf("get: %d %s", code, body)
	}
	var p struct {
		Materials []struct{ Kind, Filename string }
	}
	json.Unmarshal(body, &p)
	want := map[string]string{"application_form": "x.pdf", "address_proof": "addr.pdf", "appointments": "passwd.pdf"} // a PDF keeps .pdf
	for _, mat := range p.Materials {
		if w, ok := want[mat.Kind]; ok && mat.Filename != w {
			t.Errorf("%s stored as %q, want %q", mat.Kind, mat.Filename, w)
		}
	}

	req, _ := http.NewRequest("GET", e.URL+"/v1/packets/"+id+"/materials/application_form", nil)
	req.Header.Set("Authorization", "Bearer "+e.Tokens[azDest])
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cd := resp.Header.Get("Content-Disposition"); resp.StatusCode != 200 || cd != `attachment; filename="x.pdf"; filename*=UTF-8''x.pdf` {
		t.Errorf("material download: %d, Content-Disposition %q", resp.StatusCode, cd)
	}

	code, body = e.Do("GET", "/v1/packets/"+id+"/bundle", azDest, nil, "")
	if code != http.StatusOK {
		t.Fatalf("bundle: %d", code)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range zr.File {
		seen[f.Name] = true
		if strings.Contains(f.Name, "..") || strings.Contains(f.Name, `\`) || strings.HasPrefix(f.Name, "/") {
			t.Errorf("bundle entry %q", f.Name)
		}
	}
	for kind, name := range want {
		if !seen["materials/"+kind+"/"+name] {
			t.Errorf("bundle lacks materials/%s/%s", kind, name)
		}
	}
}
