package main

import (
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// nonroot is the uid and gid of distroless's nonroot user, which the
// gateway's image runs as.
const nonroot = "65532:65532"

type composeFile struct {
	Services map[string]struct {
		Build struct {
			Context string            `yaml:"context"`
			Args    map[string]string `yaml:"args"`
		} `yaml:"build"`
		Image       string            `yaml:"image"`
		User        string            `yaml:"user"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]map[string]string `yaml:"depends_on"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// TestComposeFile keeps docker-compose.yml honest on machines without a
// Docker engine: the gateway is built from the repo's Dockerfile, talks to
// the S3 service by the documented variables, keeps its ledger on a
// named volume, and both services have health checks that exist.
func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	gw, s3 := c.Services["tongban"], c.Services["s3"]
	if gw.Build.Context != "." || s3.Image == "" {
		t.Fatalf("services: tongban built from %q, s3 image %q", gw.Build.Context, s3.Image)
	}
	// A maintained S3 server, pinned: VersityGW at a version tag (or by digest).
	if !regexp.MustCompile(`^versity/versitygw(:v\d+\.\d+\.\d+)?(@sha256:[0-9a-f]{64})?$`).MatchString(s3.Image) || !strings.ContainsAny(s3.Image, ":@") {
		t.Errorf("s3 image %q is not a pinned versity/versitygw", s3.Image)
	}
	if strings.Contains(s3.Image, "minio/minio") {
		t.Errorf("s3 image %q gets no more community builds", s3.Image)
	}
	port := ""
	for i, a := range s3.Command {
		if a == "--port" && i+1 < len(s3.Command) {
			port = strings.TrimPrefix(s3.Command[i+1], ":")
		}
	}
	if !slices.Contains(s3.Command, "posix") || port == "" {
		t.Errorf("s3 command %v: want a posix backend on a --port", s3.Command)
	}
	if ep := gw.Environment["TONGBAN_S3_ENDPOINT"]; ep != "s3:"+port {
		t.Errorf("TONGBAN_S3_ENDPOINT = %q, want the s3 service as host:port (s3:%s)", ep, port)
	}
	for _, k := range []string{"TONGBAN_S3_ACCESS_KEY", "TONGBAN_S3_SECRET_KEY", "TONGBAN_S3_BUCKET"} {
		if gw.Environment[k] == "" {
			t.Errorf("%s not set", k)
		}
	}
	// The gateway's credentials are the S3 server's root credentials.
	if gw.Environment["TONGBAN_S3_ACCESS_KEY"] != s3.Environment["ROOT_ACCESS_KEY"] || gw.Environment["TONGBAN_S3_SECRET_KEY"] != s3.Environment["ROOT_SECRET_KEY"] {
		t.Errorf("gateway and S3 credentials differ: %v vs %v", gw.Environment, s3.Environment)
	}
	if len(gw.Volumes) == 0 || !strings.HasSuffix(gw.Volumes[0], ":/data") || !hasKey(c.Volumes, strings.Split(gw.Volumes[0], ":")[0]) {
		t.Errorf("the ledger is not on a named volume at /data: %v", gw.Volumes)
	}
	if gw.User != "" && gw.User != nonroot {
		t.Errorf("tongban runs as %q, but the image's /data belongs to %s", gw.User, nonroot)
	}
	if gw.DependsOn["s3"]["condition"] != "service_healthy" {
		t.Errorf("tongban does not wait for a healthy s3")
	}
	for name, s := range c.Services {
		if len(s.Healthcheck.Test) < 2 {
			t.Errorf("service %s has no health check", name)
		}
	}
	if hc := strings.Join(s3.Healthcheck.Test, " "); !strings.Contains(hc, ":"+port+"/health") || !slices.Contains(s3.Command, "--health") {
		t.Errorf("s3 health check %q does not ask the --health path on port %s", hc, port)
	}
	// The gateway's health check runs the binary's own command.
	if hc := strings.Join(gw.Healthcheck.Test, " "); !strings.Contains(hc, "tongban health") {
		t.Errorf("tongban health check %q", hc)
	}
	if _, ok := commands()["health"]; !ok {
		t.Error("the health check names a command the binary lacks")
	}
	if _, ok := gw.Build.Args["GOPROXY"]; !ok {
		t.Error("the build takes no GOPROXY argument for a module mirror")
	}
	// Where a compose implementation is installed, let it validate too.
	for _, cmd := range [][]string{{"docker-compose", "config", "-q"}, {"docker", "compose", "config", "-q"}} {
		if _, err := exec.LookPath(cmd[0]); err != nil {
			continue
		}
		x := exec.Command(cmd[0], cmd[1:]...)
		x.Dir = "../.."
		if out, err := x.CombinedOutput(); err == nil {
			t.Logf("%s: valid", strings.Join(cmd, " "))
			break
		} else if !strings.Contains(string(out), "unknown") {
			t.Errorf("%s: %v\n%s", strings.Join(cmd, " "), err, out)
		}
	}
}

// TestDockerfile checks that the image runs as distroless's nonroot user
// and that /data, where the named volume is mounted, belongs to that user
// before the volume is declared: a fresh named volume copies the image's
// directory, owner included, so the gateway can write its ledger.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Instructions of the final stage, with continuation lines joined.
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	var final []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			final = nil
		}
		final = append(final, line)
	}
	if len(final) == 0 || !strings.Contains(final[0], "distroless/static") || !strings.Contains(final[0], ":nonroot") {
		t.Fatalf("final stage %q is not distroless nonroot", final)
	}
	user, owned, volume := -1, -1, -1
	for i, in := range final {
		f := strings.Fields(in)
		switch strings.ToUpper(f[0]) {
		case "USER":
			if f[1] != nonroot && f[1] != "nonroot" && f[1] != "nonroot:nonroot" {
				t.Errorf("USER %s, want %s", f[1], nonroot)
			}
			user = i
		case "COPY":
			if f[len(f)-1] == "/data" || f[len(f)-1] == "/data/" {
				if !slices.Contains(f, "--chown="+nonroot) && !slices.Contains(f, "--chown=nonroot:nonroot") {
					t.Errorf("%q: /data is not given to %s", in, nonroot)
				}
				owned = i
			}
		case "VOLUME":
			if strings.Contains(in, "/data") {
				volume = i
			}
		case "RUN":
			t.Errorf("%q: the distroless stage has no shell to RUN", in)
		}
	}
	if owned < 0 || volume < 0 || owned > volume {
		t.Errorf("/data must be created and owned by %s before VOLUME /data (copy at %d, volume at %d):\n%s", nonroot, owned, volume, strings.Join(final, "\n"))
	}
	if user < 0 {
		t.Errorf("the final stage sets no USER: it relies on the base image alone")
	}
	if !strings.Contains(text, "./cmd/tongban") || !strings.Contains(text, "ARG GOPROXY") {
		t.Errorf("Dockerfile does not build ./cmd/tongban with a GOPROXY argument")
	}
	if !regexp.MustCompile(`(?m)^ENTRYPOINT \["/usr/local/bin/tongban"\]`).MatchString(text) {
		t.Errorf("the entrypoint is not the binary the compose health check runs")
	}
}

// TestDockerignore checks that `COPY . .` cannot carry a local data
// directory, keys, tokens or the git history into the build context. The
// patterns are matched as Docker does (path.Match on slash-separated
// paths, ** for any number of directories, a leading ! to re-include).
func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	var patterns []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	ignored := func(p string) bool {
		out := false
		for _, pat := range patterns {
			neg := strings.HasPrefix(pat, "!")
			pat = strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/")
			if dockerMatch(pat, p) {
				out = !neg
			}
		}
		return out
	}
	for _, p := range []string{
		".git/config", "data/ledger/signer.key", "data/applicant.key", "data/demo-tokens.json",
		"data/objects/ab/cdef", "demo-tokens.json", "signer.key", "deploy/qingpu.key",
		"cmd/tongban/data/ledger/MANIFEST", "tls/server.pem", ".env",
	} {
		if !ignored(p) {
			t.Errorf("%s would be sent into the build context", p)
		}
	}
	// What the build needs must stay.
	for _, p := range []string{"go.mod", "go.sum", "cmd/tongban/main.go", "api/api.go", "gateway/catalog.go", "ledger/append.go", "storage/fs/fs.go"} {
		if ignored(p) {
			t.Errorf("%s is ignored, but the build needs it", p)
		}
	}
}

// dockerMatch reports whether the ignore pattern matches p or one of its
// parent directories.
func dockerMatch(pat, p string) bool {
	segs := strings.Split(p, "/")
	for n := 1; n <= len(segs); n++ {
		if globMatch(strings.Split(pat, "/"), segs[:n]) {
			return true
		}
	}
	return false
}

func globMatch(pat, segs []string) bool {
	if len(pat) == 0 {
		return len(segs) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(segs); i++ {
			if globMatch(pat[1:], segs[i:]) {
				return true
			}
		}
		return false
	}
	if len(segs) == 0 {
		return false
	}
	ok, err := path.Match(pat[0], segs[0])
	return err == nil && ok && globMatch(pat[1:], segs[1:])
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}
