package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestComposeFile keeps docker-compose.yml honest on machines without a
// Docker engine: the gateway is built from the repo's Dockerfile, talks to
// the MinIO service by the documented variables, keeps its ledger on a
// named volume, and both services have health checks that exist.
func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
			DependsOn map[string]map[string]string `yaml:"depends_on"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	gw, minio := c.Services["tongban"], c.Services["minio"]
	if gw.Build != "." || minio.Image == "" {
		t.Fatalf("services: tongban built from %v, minio image %q", gw.Build, minio.Image)
	}
	if ep := gw.Environment["TONGBAN_S3_ENDPOINT"]; ep != "minio:9000" {
		t.Errorf("TONGBAN_S3_ENDPOINT = %q, want the minio service as host:port", ep)
	}
	for _, k := range []string{"TONGBAN_S3_ACCESS_KEY", "TONGBAN_S3_SECRET_KEY", "TONGBAN_S3_BUCKET"} {
		if gw.Environment[k] == "" {
			t.Errorf("%s not set", k)
		}
	}
	if len(gw.Volumes) == 0 || !strings.HasSuffix(gw.Volumes[0], ":/data") || !hasKey(c.Volumes, strings.Split(gw.Volumes[0], ":")[0]) {
		t.Errorf("the ledger is not on a named volume at /data: %v", gw.Volumes)
	}
	if gw.DependsOn["minio"]["condition"] != "service_healthy" {
		t.Errorf("tongban does not wait for a healthy minio")
	}
	for name, s := range c.Services {
		if len(s.Healthcheck.Test) < 2 {
			t.Errorf("service %s has no health check", name)
		}
	}
	// The gateway's health check runs the binary's own command.
	if hc := strings.Join(gw.Healthcheck.Test, " "); !strings.Contains(hc, "tongban health") {
		t.Errorf("tongban health check %q", hc)
	}
	if _, ok := commands()["health"]; !ok {
		t.Error("the health check names a command the binary lacks")
	}
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil || !strings.Contains(string(df), "./cmd/tongban") || !strings.Contains(string(df), "VOLUME /data") {
		t.Errorf("Dockerfile does not build ./cmd/tongban with a /data volume: %v", err)
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

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}
