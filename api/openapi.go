package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"tongban/gateway"
)

// The OpenAPI 3 document is written here, operation by operation, with
// the shapes of requests and answers; the route table adds each
// operation's summary, path parameters and security. The paths come from
// this description, not from the table, so a test can hold the router
// and the document against each other.

// schema is a JSON Schema object of the document.
type schema = map[string]any

func ref(name string) schema { return schema{"$ref": "#/components/schemas/" + name} }
func str() schema            { return schema{"type": "string"} }
func integer() schema        { return schema{"type": "integer", "format": "int64"} }
func boolean() schema        { return schema{"type": "boolean"} }
func timestamp() schema      { return schema{"type": "string", "format": "date-time"} }
func b64() schema            { return schema{"type": "string", "format": "byte"} }
func binary() schema         { return schema{"type": "string", "format": "binary"} }
func array(items schema) schema {
	return schema{"type": "array", "items": items}
}

// nullable marks an array the code sends as null when it is empty.
func nullable(s schema) schema { s["nullable"] = true; return s }

func hexDigest() schema {
	return schema{"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "SHA-256, lowercase hex"}
}

func object(props schema, required ...string) schema {
	s := schema{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func enum(values ...string) schema { return schema{"type": "string", "enum": values} }

var schemas = schema{
	"Error": object(schema{"error": object(schema{
		"code":       str(),
		"message":    str(),
		"fields":     schema{"type": "object", "additionalProperties": str(), "description": "the offending fields and what is wrong with each"},
		"request_id": str(),
	}, "code", "message")}, "error"),
	"Catalog": object(schema{"items": array(ref("Item"))}, "items"),
	"Item": object(schema{
		"code": str(), "name": str(), "name_en": str(), "category": str(),
		"time_limit":   object(schema{"days": integer(), "working_days": boolean(), "text": str()}, "days", "working_days"),
		"destinations": array(str()),
		"materials":    array(ref("CatalogMaterial")),
	}, "code", "name", "category", "time_limit", "materials"),
	"CatalogMaterial": object(schema{
		"kind": str(), "name": str(), "name_en": str(), "required": boolean(),
		"types": array(str()), "max_bytes": integer(),
	}, "kind", "name", "required", "types", "max_bytes"),
	"Manifest": object(schema{
		"item":        str(),
		"destination": str(),
		"applicant":   ref("Applicant"),
		"materials":   array(ref("ManifestMaterial")),
	}, "item", "destination", "applicant", "materials"),
	"SupplementManifest": object(schema{"materials": array(ref("ManifestMaterial"))}, "materials"),
	"ManifestMaterial": object(schema{
		"kind": str(), "filename": str(), "sha256": schema{"type": "string", "description": "optional: the digest the server must find"},
	}, "kind", "filename"),
	"Applicant": object(schema{"type": enum("person", "enterprise"), "name": str(), "id": str()}, "type", "name", "id"),
	"MaterialRef": object(schema{
		"kind": str(), "filename": str(), "size": integer(), "sha256": hexDigest(), "content_type": str(),
		"sm3": schema{"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "gm crypto profile only: SM3, lowercase hex"},
	}, "kind", "filename", "size", "sha256", "content_type"),
	"Event": object(schema{
		"seq": integer(), "type": str(), "time": timestamp(), "agency": str(), "role": str(), "reason": str(),
	}, "seq", "type", "time", "agency", "role"),
	"Packet": object(schema{
		"id":              str(),
		"status":          enum("submitted", "received", "correction_requested", "approved", "rejected", "license_issued", "delivered"),
		"item":            str(),
		"origin":          str(),
		"destination":     str(),
		"applicant_type":  str(),
		"manifest_sha256": hexDigest(),
		"materials":       array(ref("MaterialRef")),
		"license":         ref("MaterialRef"),
		"submitted":       timestamp(),
		"updated":         timestamp(),
		"deadline":        timestamp(),
		"paused_at":       schema{"type": "string", "format": "date-time", "description": "the deadline's clock is stopped for a correction since"},
		"overdue":         boolean(),
		"reason":          schema{"type": "string", "description": "the reason of the latest decision"},
		"seq":             schema{"type": "integer", "format": "int64", "description": "ledger seq of the submission"},
		"last_seq":        integer(),
		"history":         schema{"type": "array", "items": ref("Event"), "description": "the latest events, oldest first"},
		"history_count":   schema{"type": "integer", "format": "int64", "description": "how many events the packet has in all"},
		"history_cursor":  schema{"type": "string", "description": "for GET /v1/packets/{id}/history: the events before those in history"},
		"applicant":       schema{"$ref": "#/components/schemas/Applicant", "description": "for the origin and destination only"},
		"receipt":         schema{"type": "string", "description": "on the answer to a write: the C2SP tlog-proof of the entry it appended (docs/formats.md)"},
	}, "id", "status", "item", "origin", "destination", "materials", "seq", "history"),
	"PacketList": object(schema{
		"packets":     array(ref("Packet")),
		"next_cursor": schema{"type": "string", "description": "the next page's cursor; absent on the last page"},
	}, "packets"),
	"Counts": object(schema{
		"counts": schema{"type": "object", "additionalProperties": integer(), "description": "packets per status, every status present"},
		"total":  integer(),
	}, "counts", "total"),
	"HistoryPage": object(schema{
		"events":      array(ref("Event")),
		"next_cursor": schema{"type": "string", "description": "the cursor of the older events; absent on the oldest page"},
	}, "events"),
	"ActionRequest": object(schema{"action": enum("receive", "return", "approve", "reject", "deliver"), "reason": schema{"type": "string", "description": "required for return and reject"}}, "action"),
	"Entry": object(schema{
		"seq": integer(), "time": timestamp(), "type": str(),
		"actor":  object(schema{"agency": str(), "role": str()}, "agency", "role"),
		"packet": str(), "prev": b64(), "payload": schema{"type": "object", "description": "type-specific: digests, never personal data"},
		"raw": schema{"type": "string", "format": "byte", "description": "the canonical entry bytes the tree commits to"}, "leaf_hash": b64(),
	}, "seq", "time", "type", "actor", "prev", "raw", "leaf_hash"),
	"Entries":          object(schema{"entries": array(ref("Entry"))}, "entries"),
	"InclusionProof":   object(schema{"seq": integer(), "size": integer(), "hashes": nullable(array(b64()))}, "seq", "size", "hashes"),
	"ConsistencyProof": object(schema{"from": integer(), "to": integer(), "hashes": nullable(array(b64()))}, "from", "to", "hashes"),
	"VerifyRequest":    nullable(object(schema{"scrub": schema{"type": "boolean", "description": "also re-read every stored object"}})),
	"VerifyReport": object(schema{
		"ok": boolean(), "size": integer(), "root": b64(), "checkpoints": integer(),
		"first_bad_seq": integer(), "error": str(), "took_ns": integer(),
		"scrub": object(schema{
			"objects": integer(), "bytes": integer(),
			"missing": nullable(array(ref("ScrubItem"))), "corrupt": nullable(array(ref("ScrubItem"))),
		}, "objects", "bytes", "missing", "corrupt"),
	}, "ok", "size", "root", "checkpoints", "took_ns"),
	"ScrubItem": object(schema{"sha256": hexDigest(), "packet": str(), "kind": str(), "got": str()}, "sha256", "packet", "kind"),
	"Status":    object(schema{"status": str()}, "status"),
	"Readiness": object(schema{
		"status":  enum("ready", "unavailable", "recovering"),
		"error":   schema{"type": "string", "description": "why not ready: for auditors and operators only"},
		"applied": schema{"type": "integer", "format": "int64", "description": "recovering: ledger entries replayed into the views so far"},
		"total":   schema{"type": "integer", "format": "int64", "description": "recovering: ledger entries to replay"},
	}, "status"),
}

// content describes a body of one media type.
func content(mediaType string, s schema) schema {
	return schema{mediaType: schema{"schema": s}}
}

func jsonBody(s schema) schema { return content("application/json", s) }

func answer(desc string, body schema) schema {
	a := schema{"description": desc}
	if body != nil {
		a["content"] = body
	}
	return a
}

// errorAnswers are the documented failures of an operation, by status.
func errorAnswers(codes ...int) schema {
	out := schema{"default": schema{"$ref": "#/components/responses/Error"}}
	for _, c := range codes {
		out[strconv.Itoa(c)] = schema{"$ref": "#/components/responses/Error"}
	}
	return out
}

func with(m schema, more schema) schema {
	for k, v := range more {
		m[k] = v
	}
	return m
}

func query(name string, s schema, required bool, desc string) schema {
	return schema{"name": name, "in": "query", "required": required, "schema": s, "description": desc}
}

// multipartBody is a multipart/form-data request of named parts.
func multipartBody(props schema, required []string, encoding schema) schema {
	s := object(props, required...)
	mt := schema{"schema": s}
	if encoding != nil {
		mt["encoding"] = encoding
	}
	return schema{"required": true, "content": schema{"multipart/form-data": mt}}
}

// materialTypes are the content types a material is served as.
var materialTypes = []string{"application/pdf", "application/ofd", "image/jpeg", "image/png"}

// operations describes every route: "METHOD /path" (gin's :param syntax)
// to its request and responses. The file parts of a submission or a
// supplement are named by the material kinds of the catalogue.
func operations(cat *gateway.Catalog) map[string]schema {
	packetAnswer := func(code int, desc string) schema {
		return schema{strconv.Itoa(code): answer(desc, jsonBody(ref("Packet")))}
	}
	binaryTypes := schema{}
	for _, t := range materialTypes {
		binaryTypes[t] = schema{"schema": binary()}
	}
	manifestPart := schema{"manifest": schema{"contentType": "application/json"}}
	files := func(manifest schema) schema {
		parts := schema{"manifest": manifest}
		for _, it := range cat.Items {
			for _, m := range it.Materials {
				parts[m.Kind] = schema{"type": "string", "format": "binary", "description": "a file of material kind " + m.Kind}
			}
		}
		return parts
	}
	return map[string]schema{
		"GET /v1/catalog": {"responses": with(errorAnswers(), schema{"200": answer("the catalogue", jsonBody(ref("Catalog")))})},
		"POST /v1/packets": {
			"description": "Part `manifest` first, then one file part per material, named by its kind.",
			"requestBody": multipartBody(files(ref("Manifest")), []string{"manifest"}, manifestPart),
			"responses": with(errorAnswers(400, 401, 403, 413, 415, 422, 429, 503), schema{"201": with(answer("the packet as recorded", jsonBody(ref("Packet"))),
				schema{"headers": schema{"Location": schema{"schema": str()}}})}),
		},
		"GET /v1/packets": {
			"description": "One page, in a stable order: the inbox by deadline (soonest first), the outbox and box=all by submission. " +
				"Pass next_cursor as cursor for the next page; no cursor is the first page.",
			"parameters": []schema{
				query("box", enum("inbox", "outbox", "all"), false, "default: outbox for submitters, inbox for reviewers, all for auditors (all is for auditors only)"),
				query("status", enum("submitted", "received", "correction_requested", "approved", "rejected", "license_issued", "delivered"), false, "only packets in this status"),
				query("item", str(), false, "only packets of this service item"),
				query("origin", str(), false, "only packets from this agency"),
				query("destination", str(), false, "only packets to this agency"),
				query("from", str(), false, "only packets submitted at or after this date (2006-01-02, Shanghai) or RFC 3339 time"),
				query("to", str(), false, "only packets submitted before this date or time"),
				query("overdue", boolean(), false, "only overdue packets (true) or only the others (false)"),
				query("limit", schema{"type": "integer", "minimum": 1, "maximum": gateway.MaxLimit, "default": gateway.DefaultLimit}, false, "packets per page"),
				query("cursor", str(), false, "opaque: next_cursor of the previous page"),
				query("format", enum("json", "csv"), false, "csv: every matching packet (no limit or cursor) as one CSV file, streamed; "+
					"UTF-8 with a byte order mark, a header row, times RFC 3339 at +08:00, cells starting with = + - @ tab or CR prefixed with '; "+
					"the applicant's name only for the packet's origin and destination"),
			},
			"responses": with(errorAnswers(400, 401, 403, 503), schema{"200": answer("a page of packets, or with format=csv all of them",
				with(jsonBody(ref("PacketList")), content("text/csv", str())))}),
		},
		"GET /v1/packets/counts": {
			"parameters": []schema{query("box", enum("inbox", "outbox", "all"), false, "as for GET /v1/packets")},
			"responses":  with(errorAnswers(400, 401, 403, 503), schema{"200": answer("packets per status", jsonBody(ref("Counts")))}),
		},
		"GET /v1/packets/:id/history": {
			"description": "Events oldest first within a page; pages go back in time: start from the packet's history_cursor (or none for the latest events) and follow next_cursor.",
			"parameters": []schema{
				query("cursor", str(), false, "opaque: history_cursor of the packet or next_cursor of the previous page"),
				query("limit", schema{"type": "integer", "minimum": 1, "maximum": gateway.MaxLimit, "default": gateway.DefaultLimit}, false, "events per page"),
			},
			"responses": with(errorAnswers(400, 401, 403, 404, 503), schema{"200": answer("a page of the history", jsonBody(ref("HistoryPage")))}),
		},
		"GET /v1/packets/:id": {"responses": with(errorAnswers(401, 403, 404), packetAnswer(200, "the packet"))},
		"GET /v1/packets/:id/materials/:kind": {"responses": with(errorAnswers(401, 403, 404, 500, 503), schema{"200": schema{
			"description": "the file, verified against its digest while it is sent",
			"headers":     schema{"X-Content-SHA256": schema{"schema": hexDigest()}},
			"content":     binaryTypes,
		}})},
		"GET /v1/packets/:id/bundle": {"responses": with(errorAnswers(401, 403, 404, 500, 503), schema{"200": answer(
			"zip: manifest.json, materials/<kind>/<file>, license/, evidence/ (entries, inclusion proofs, signed checkpoint)",
			content("application/zip", binary()))})},
		"GET /v1/packets/:id/receipts/:seq": {
			"parameters": []schema{query("witnessed", enum("true", "false"), false,
				"true: prove the entry into the newest checkpoint a quorum of the witnesses cosigned (waits up to 10 s for them; 503 without witnesses)")},
			"responses": with(errorAnswers(400, 401, 403, 404, 503), schema{"200": answer(
				"a C2SP tlog-proof: the entry (extra), its inclusion proof, a checkpoint signed at seq+1 (or the cosigned one)", content("text/plain", str()))}),
		},
		"POST /v1/packets/:id/actions": {
			"requestBody": schema{"required": true, "content": jsonBody(ref("ActionRequest"))},
			"responses":   with(errorAnswers(400, 401, 403, 404, 409, 413, 415, 422, 503), packetAnswer(200, "the packet after the action")),
		},
		"POST /v1/packets/:id/supplements": {
			"description": "Optional part `manifest` first, then the files, named by kind.",
			"requestBody": multipartBody(files(ref("SupplementManifest")), nil, manifestPart),
			"responses":   with(errorAnswers(400, 401, 403, 404, 409, 413, 415, 422, 503), packetAnswer(200, "the packet, submitted again")),
		},
		"POST /v1/packets/:id/license": {
			"requestBody": multipartBody(schema{"license": binary()}, []string{"license"}, nil),
			"responses":   with(errorAnswers(400, 401, 403, 404, 409, 413, 415, 422, 503), packetAnswer(200, "the packet with its licence")),
		},
		"GET /v1/ledger/key": {"responses": with(errorAnswers(), schema{"200": answer("the log's note verifier key, one line", content("text/plain", str()))})},
		"GET /v1/ledger/checkpoint": {"responses": with(errorAnswers(503), schema{"200": answer(
			"a C2SP tlog-checkpoint in a signed note", content("text/plain", str()))})},
		"GET /v1/ledger/tlog/checkpoint": {"responses": with(errorAnswers(401, 503), schema{"200": answer(
			"the checkpoint with its cosignatures (short-lived cache)", content("text/plain", str()))})},
		"GET /v1/ledger/tlog/tile/*tile": {"responses": with(errorAnswers(401, 404, 503), schema{"200": answer(
			"C2SP tlog-tiles data: 32-byte hashes, or entries each as a big-endian uint16 length and its canonical bytes; full tiles are immutable",
			content("application/octet-stream", binary()))})},
		"GET /v1/ledger/entries/:seq": {"responses": with(errorAnswers(400, 401, 403, 404), schema{"200": answer("the entry", jsonBody(ref("Entry")))})},
		"GET /v1/ledger/entries": {
			"parameters": []schema{
				query("packet", str(), false, "a packet's entries"),
				query("from", schema{"type": "integer", "minimum": 0}, false, "else a range from this seq"),
				query("limit", schema{"type": "integer", "minimum": 0}, false, "of at most this many (default 100, at most 1000)"),
			},
			"responses": with(errorAnswers(400, 401, 403, 404), schema{"200": answer("the entries", jsonBody(ref("Entries")))}),
		},
		"GET /v1/ledger/proofs/inclusion": {
			"parameters": []schema{
				query("seq", schema{"type": "integer", "minimum": 0}, true, "the entry"),
				query("size", schema{"type": "integer", "minimum": 0}, false, "the tree size (default: the current one)"),
			},
			"responses": with(errorAnswers(400, 401, 403, 404), schema{"200": answer("an RFC 6962 audit path", jsonBody(ref("InclusionProof")))}),
		},
		"GET /v1/ledger/proofs/consistency": {
			"parameters": []schema{
				query("from", schema{"type": "integer", "minimum": 0}, true, "the older tree size"),
				query("to", schema{"type": "integer", "minimum": 0}, false, "the newer tree size (default: the current one)"),
			},
			"responses": with(errorAnswers(400, 401, 403, 404), schema{"200": answer("an RFC 6962 consistency proof", jsonBody(ref("ConsistencyProof")))}),
		},
		"POST /v1/ledger/verify": {
			"parameters": []schema{
				query("progress", enum("1"), false, "stream NDJSON progress lines ({done, total}), then the report"),
				query("scrub", enum("1"), false, "as {\"scrub\": true}"),
			},
			"requestBody": schema{"required": false, "content": jsonBody(ref("VerifyRequest"))},
			"responses": with(errorAnswers(400, 401, 403, 503), schema{"200": schema{
				"description": "the report (a fault found is ok=false, not an error status)",
				"content": with(jsonBody(ref("VerifyReport")), content("application/x-ndjson", schema{
					"type": "string", "description": "progress lines, then the report or {\"error\"}"})),
			}}),
		},
		"GET /healthz": {"responses": with(errorAnswers(), schema{"200": answer("the process is alive", jsonBody(ref("Status")))})},
		"GET /readyz": {"responses": with(errorAnswers(), schema{
			"200": answer("storage and ledger available", jsonBody(ref("Readiness"))),
			"503": with(answer("not ready (the reason only for auditors and operators)", jsonBody(ref("Readiness"))),
				schema{"headers": schema{"Retry-After": schema{"schema": str()}}}),
		})},
		"GET /metrics":      {"responses": with(errorAnswers(), schema{"200": answer("Prometheus text format", content("text/plain", str()))})},
		"GET /openapi.json": {"responses": with(errorAnswers(), schema{"200": answer("this document", jsonBody(schema{"type": "object"}))})},
	}
}

// openapiDoc builds the document: the operations above, with the route
// table's summary, path parameters, security and Idempotency-Key.
func (s *server) openapiDoc() schema {
	routes := map[string]route{}
	for _, rt := range s.table() {
		routes[rt.method+" "+rt.path] = rt
	}
	paths := schema{}
	for key, op := range operations(s.g.Catalog()) {
		method, path, _ := strings.Cut(key, " ")
		doc := schema{}
		for k, v := range op {
			doc[k] = v
		}
		var params []schema
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, ":") {
				ps := str()
				if seg == ":seq" {
					ps = schema{"type": "integer", "minimum": 0}
				}
				params = append(params, schema{"name": seg[1:], "in": "path", "required": true, "schema": ps})
			}
		}
		if rt, ok := routes[key]; ok {
			doc["summary"] = rt.summary
			if rt.auth {
				doc["security"] = []schema{{"bearer": []string{}}}
			}
			if rt.idempotent {
				params = append(params, schema{"name": "Idempotency-Key", "in": "header", "required": false, "schema": str(),
					"description": "a retry with the same key and request returns the first outcome and appends nothing"})
			}
		}
		if q, ok := op["parameters"].([]schema); ok {
			params = append(params, q...)
		}
		if params != nil {
			doc["parameters"] = params
		}
		p := openapiPath(path)
		if paths[p] == nil {
			paths[p] = schema{}
		}
		paths[p].(schema)[strings.ToLower(method)] = doc
	}
	return schema{
		"openapi": "3.0.3",
		"info": schema{"title": "Tongban gateway", "version": "1",
			"description": "Every failure answers {\"error\": {\"code\", \"message\", \"fields\", \"request_id\"}}."},
		"paths": paths,
		"components": schema{
			"schemas": schemas,
			"responses": schema{"Error": answer("an error; fields names the offending input",
				jsonBody(ref("Error")))},
			"securitySchemes": schema{"bearer": schema{"type": "http", "scheme": "bearer"}},
		},
	}
}

// openapi serves the OpenAPI 3 document.
func (s *server) openapi(c *gin.Context) {
	c.JSON(http.StatusOK, s.openapiDoc())
}

// openapiPath turns gin's :param into OpenAPI's {param}.
func openapiPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}
