package scale_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// buildPlatzwart builds the CLI once per benchmark binary (the Go build cache makes
// later builds quick).
func buildPlatzwart(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "platzwart")
	build := exec.CommandContext(b.Context(), "go", "build", "-o", bin, "../../cmd/platzwart")
	build.Env = append(os.Environ(), "GOTOOLCHAIN=auto")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building platzwart: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a free loopback address.
func freeAddr(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// process is a running `platzwart controller`; its log goes to a file.
type process struct {
	cmd     *exec.Cmd
	logPath string
	metrics string // base URL of /metrics and /debug/pprof/
	http    *http.Client
	done    chan struct{}
	err     error // why it exited; set before done is closed
}

// startProcess runs `platzwart controller` with args, serving metrics on
// metricsAddr, and kills it when the benchmark ends.
func startProcess(b *testing.B, bin, logPath, metricsAddr string, args ...string) *process {
	b.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"controller"}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		b.Fatal(err)
	}
	p := &process{cmd: cmd, logPath: logPath, metrics: "http://" + metricsAddr,
		http: &http.Client{Timeout: 5 * time.Minute}, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	})
	return p
}

// exited returns why the process exited, or nil while it runs.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("the controller exited (%v); end of %s:\n%s", p.err, p.logPath, tail(p.logPath, 30))
	default:
		return nil
	}
}

// sigterm stops the process as a rolling update does.
func (p *process) sigterm(within time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		return fmt.Errorf("the controller did not exit within %s of SIGTERM", within)
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// sample is what one scrape of /metrics says.
type sample struct {
	at time.Time
	// requests is rest_client_requests_total summed over its labels: every request
	// of every client-go client of the process; writes are those with a method other
	// than GET. byMethod splits them by method and status code ("PATCH 200").
	requests, writes float64
	byMethod         map[string]float64
	// reconciles is controller_runtime_reconcile_total of the workplace controller,
	// reconcileSeconds the sum of their durations.
	reconciles, reconcileSeconds float64
	// hasCycles says whether the controller exports platzwart_controller_cycle_*.
	hasCycles bool
	// cycles, cycleSeconds and cycleWorkplaces are the completed cycles, the duration
	// of the last one and its Workplaces.
	cycles, cycleSeconds, cycleWorkplaces float64
	// size is the length of the /metrics answer in bytes.
	size int
}

// scrape reads the process's /metrics.
func (p *process) scrape(ctx context.Context) (sample, error) {
	s := sample{at: time.Now(), byMethod: map[string]float64{}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metrics+"/metrics", nil)
	if err != nil {
		return s, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return s, fmt.Errorf("scrape %s: %w", p.metrics, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("scrape %s: %s", p.metrics, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return s, fmt.Errorf("scrape %s: %w", p.metrics, err)
	}
	s.size = len(data)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		return s, fmt.Errorf("scrape %s: %w", p.metrics, err)
	}
	requests, ok := families["rest_client_requests_total"]
	if !ok {
		return s, fmt.Errorf("scrape %s: no rest_client_requests_total", p.metrics)
	}
	for _, m := range requests.GetMetric() {
		v := m.GetCounter().GetValue()
		s.requests += v
		s.byMethod[label(m, "method")+" "+label(m, "code")] += v
		if label(m, "method") != http.MethodGet {
			s.writes += v
		}
	}
	for _, m := range families["controller_runtime_reconcile_total"].GetMetric() {
		if label(m, "controller") == "workplace" {
			s.reconciles += m.GetCounter().GetValue()
		}
	}
	for _, m := range families["controller_runtime_reconcile_time_seconds"].GetMetric() {
		if label(m, "controller") == "workplace" {
			s.reconcileSeconds += m.GetHistogram().GetSampleSum()
		}
	}
	if f, ok := families["platzwart_controller_cycles_total"]; ok {
		s.hasCycles = true
		s.cycles = value(f)
		s.cycleSeconds = value(families["platzwart_controller_cycle_duration_seconds"])
		s.cycleWorkplaces = value(families["platzwart_controller_cycle_workplaces"])
	}
	return s, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// value is the sum of a family's counters and gauges (0 for a missing family).
func value(f *dto.MetricFamily) float64 {
	var v float64
	for _, m := range f.GetMetric() {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return v
}

// usage is the process's memory and CPU time from /proc.
type usage struct {
	at       time.Time
	rss, hwm int64         // VmRSS and VmHWM (peak RSS), bytes
	cpu      time.Duration // utime + stime
}

// userHZ is the unit of utime and stime in /proc/<pid>/stat (USER_HZ: 100 on
// every architecture Linux runs Go on).
const userHZ = 100

func (p *process) usage() (usage, error) {
	u := usage{at: time.Now()}
	pid := p.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, v, _ := strings.Cut(line, ":")
		var dst *int64
		switch key {
		case "VmRSS":
			dst = &u.rss
		case "VmHWM":
			dst = &u.hwm
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return u, fmt.Errorf("/proc/%d/status: %s: %w", pid, line, err)
		}
		*dst = kb << 10
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The fields after the command name (which is in parentheses and may hold
	// spaces): state is field 3, utime and stime are fields 14 and 15.
	_, rest, ok := strings.Cut(string(stat), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		t, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return u, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += t
	}
	u.cpu = time.Duration(ticks) * time.Second / userHZ
	return u, nil
}

// profile saves /debug/pprof/<kind> (with query) into path.
func (p *process) profile(ctx context.Context, path, kind, query string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metrics+"/debug/pprof/"+kind+"?"+query, nil)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("pprof %s: %w", kind, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("pprof %s: %w", kind, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof %s: %s: %s", kind, resp.Status, bytes.TrimSpace(data))
	}
	return os.WriteFile(path, data, 0o644)
}

// pprofTop is `go tool pprof -top` of profiles (merged), its first lines, sorted by
// flat or, with cum, by cumulative value.
func pprofTop(ctx context.Context, lines int, cum bool, paths ...string) (string, error) {
	if len(paths) == 0 {
		return "", errors.New("no profiles")
	}
	args := []string{"tool", "pprof", "-top", "-nodecount=" + strconv.Itoa(lines)}
	if cum {
		args = append(args, "-cum")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, paths...)...)
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=auto")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof -top: %v\n%s", err, out)
	}
	return string(out), nil
}

// requestsBetween is what the process requested between two samples, by method and
// status code, for the log.
func requestsBetween(s1, s2 sample) string {
	var parts []string
	for k, v := range s2.byMethod {
		if d := v - s1.byMethod[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s: %.0f", k, d))
		}
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
