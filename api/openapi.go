package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// openapi serves an OpenAPI 3 document built from the route table.
func (s *server) openapi(c *gin.Context) {
	paths := map[string]map[string]any{}
	for _, rt := range s.table() {
		p := openapiPath(rt.path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		op := map[string]any{"summary": rt.summary, "responses": map[string]any{
			"default": map[string]any{"description": "JSON error: {\"error\": {\"code\", \"message\", \"fields\"}}"},
			"200":     map[string]any{"description": "OK"},
		}}
		var params []map[string]any
		for _, seg := range strings.Split(rt.path, "/") {
			if strings.HasPrefix(seg, ":") {
				params = append(params, map[string]any{"name": seg[1:], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
			}
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.auth {
			op["security"] = []map[string]any{{"bearer": []string{}}}
		}
		paths[p][strings.ToLower(rt.method)] = op
	}
	c.JSON(http.StatusOK, map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]any{"title": "Tongban gateway", "version": "1"},
		"paths":   paths,
		"components": map[string]any{"securitySchemes": map[string]any{
			"bearer": map[string]any{"type": "http", "scheme": "bearer"},
		}},
	})
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
