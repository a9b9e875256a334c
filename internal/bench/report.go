package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// targets judges the report against the gateway's targets.
func (r *Report) targets() []Target {
	var out []Target
	atMost := func(name string, v, limit float64, format string) {
		out = append(out, Target{Name: name, Limit: "≤ " + fmt.Sprintf(format, limit), Value: v, Status: status(v <= limit)})
	}
	atLeast := func(name string, v, limit float64, format string) {
		out = append(out, Target{Name: name, Limit: "≥ " + fmt.Sprintf(format, limit), Value: v, Status: status(v >= limit)})
	}
	for _, p := range r.Upstreams {
		atMost(p.Transport+": sequential p50 gateway/direct", p.Sequential.P50Ratio, maxP50Ratio, "%.2f")
	}
	for _, p := range r.Upstreams {
		atLeast(fmt.Sprintf("%s: %d-session throughput gateway/direct", p.Transport, p.Concurrent.Sessions), p.Concurrent.Ratio, minThroughputRatio, "%.2f")
	}
	const (
		idleName    = "gateway idle RSS (MiB)"
		sessionName = "gateway RSS per idle session (KiB)"
	)
	m := r.Memory
	if m == nil {
		out = append(out, Target{Name: idleName, Limit: fmt.Sprintf("≤ %d", maxIdleRSSKiB>>10), Status: "n/a"},
			Target{Name: sessionName, Limit: fmt.Sprintf("≤ %d", maxPerSessionKiB), Status: "n/a"})
		return out
	}
	atMost(idleName, float64(m.IdleRSSKiB)/1024, maxIdleRSSKiB/1024, "%.0f")
	if m.IdleSessions > 0 {
		atMost(sessionName, m.PerSessionKiB, maxPerSessionKiB, "%.0f")
	} else {
		out = append(out, Target{Name: sessionName, Limit: fmt.Sprintf("≤ %d", maxPerSessionKiB), Status: "n/a"})
	}
	return out
}

func status(ok bool) string {
	if ok {
		return "pass"
	}
	return "miss"
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "Switchboard gateway benchmark: %s/%s, %d CPUs, protocol %s\n", r.GOOS, r.GOARCH, r.CPUs, r.ProtocolVersion)
	fmt.Fprintf(w, "Tool call echo; client → upstream (direct) vs client → gateway /mcp/{server} → upstream; %d warm-up calls.\n", r.Warmup)

	fmt.Fprintf(w, "\nOne session, %d sequential calls\n", r.Calls)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "UPSTREAM\tPATH\tP50\tP99\tCALLS/S\t")
	for _, p := range r.Upstreams {
		s := p.Sequential
		fmt.Fprintf(tw, "%s\tdirect\t%s\t%s\t%.0f\t\n", p.Transport, dur(s.Direct.P50Micros), dur(s.Direct.P99Micros), s.Direct.CallsPerSec)
		fmt.Fprintf(tw, "\tgateway\t%s\t%s\t%.0f\t\n", dur(s.Gateway.P50Micros), dur(s.Gateway.P99Micros), s.Gateway.CallsPerSec)
		fmt.Fprintf(tw, "\tgateway/direct\t%.2fx\t%.2fx\t%.2fx\t\n", s.P50Ratio, ratio(s.Gateway.P99Micros, s.Direct.P99Micros), s.ThroughputRatio)
	}
	tw.Flush()

	if len(r.Upstreams) > 0 {
		c := r.Upstreams[0].Concurrent
		fmt.Fprintf(w, "\n%d concurrent sessions, %d calls each\n", c.Sessions, c.CallsPerSession)
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "UPSTREAM\tDIRECT CALLS/S\tGATEWAY CALLS/S\tGATEWAY/DIRECT\t")
	for _, p := range r.Upstreams {
		c := p.Concurrent
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2fx\t\n", p.Transport, c.DirectCallsPerSec, c.GatewayCallsPerSec, c.Ratio)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nGateway process memory (RSS)")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if m := r.Memory; m == nil {
		fmt.Fprintln(tw, "idle\tn/a")
		fmt.Fprintln(tw, "per idle session\tn/a")
	} else {
		fmt.Fprintf(tw, "idle\t%s\n", kib(m.IdleRSSKiB))
		if m.IdleAnonKiB > 0 {
			fmt.Fprintf(tw, "  of which anonymous (not the mapped executable)\t%s\n", kib(m.IdleAnonKiB))
		}
		if m.IdleSessions > 0 {
			fmt.Fprintf(tw, "with %d idle sessions\t%s\n", m.IdleSessions, kib(m.SessionsRSSKiB))
			fmt.Fprintf(tw, "per idle session\t%.1f KiB\n", m.PerSessionKiB)
		}
		fmt.Fprintf(tw, "after the call measurements\t%s\n", kib(m.AfterLoadRSSKiB))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nTargets")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, t := range r.Targets {
		v := "n/a"
		if t.Status != "n/a" {
			v = fmt.Sprintf("%.2f", t.Value)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, v, t.Limit, strings.ToUpper(t.Status))
	}
	tw.Flush()
}

func dur(micros float64) string {
	return time.Duration(micros * float64(time.Microsecond)).Round(time.Microsecond).String()
}

func kib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/1024)
}
