package console

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounds of the lag history.
const (
	// lagSamples per group: 180 samples of 5 s are the last 15 minutes.
	lagSamples = 180
	// maxSampledGroups: the sampler follows the first groups by name.
	maxSampledGroups = 64
)

// lagSample is one observation of a group's lag.
type lagSample struct {
	At      time.Time
	Offsets int64 // total lag in offsets over the group's partitions
	// Seconds is the largest lag in seconds over the partitions (the age
	// of the oldest unconsumed record); -1 when it could not be read.
	Seconds float64
}

// lagHistory is a bounded ring of samples per group.
type lagHistory struct {
	mu sync.Mutex
	// groups maps a group to its samples, oldest first; at most
	// lagSamples each, at most maxSampledGroups groups. Guarded by mu.
	groups map[string][]lagSample
}

func newLagHistory() *lagHistory { return &lagHistory{groups: map[string][]lagSample{}} }

// add appends samples for the groups in batch and forgets groups that are
// no longer listed.
func (h *lagHistory) add(batch map[string]lagSample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for g := range h.groups {
		if _, ok := batch[g]; !ok {
			delete(h.groups, g)
		}
	}
	for g, s := range batch {
		ring := h.groups[g]
		if len(ring) == lagSamples {
			// Shift in place: the slice never grows past lagSamples.
			copy(ring, ring[1:])
			ring = ring[:lagSamples-1]
		}
		h.groups[g] = append(ring, s)
	}
}

// samples returns a copy of a group's samples, oldest first.
func (h *lagHistory) samples(group string) []lagSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.groups[group])
}

// startSampler runs the sampler goroutine until Close.
func (c *Console) startSampler() {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.sampleOnce()
		t := time.NewTicker(c.opts.SampleInterval)
		defer t.Stop()
		for {
			select {
			case <-c.ctx.Done():
				return
			case <-t.C:
				c.sampleOnce()
			}
		}
	}()
}

// sampleOnce records the lag of the first maxSampledGroups groups. All its
// calls share one Options.Timeout deadline.
func (c *Console) sampleOnce() {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
	defer cancel()
	listed, err := c.adm.ListGroups(ctx)
	if err != nil {
		c.log.Debug("console: lag sample: list groups", "err", err)
		return
	}
	names := listed.Groups()
	if len(names) > maxSampledGroups {
		names = names[:maxSampledGroups]
	}
	batch := make(map[string]lagSample, len(names))
	if len(names) > 0 {
		lags, err := c.adm.Lag(ctx, slices.Clone(names)...)
		if err != nil {
			c.log.Debug("console: lag sample", "err", err)
			return
		}
		now := c.opts.Now()
		for _, g := range names {
			l, ok := lags[g]
			if !ok || l.Error() != nil {
				continue
			}
			s := lagSample{At: now, Offsets: totalLag(l.Lag), Seconds: -1}
			if secs := c.lagSeconds(ctx, l.Lag); len(secs) > 0 {
				s.Seconds = 0
				for _, d := range secs {
					s.Seconds = max(s.Seconds, d.Seconds())
				}
			}
			batch[g] = s
		}
	}
	c.lag.add(batch)
}

// plot is an inline SVG line of samples, computed here so that the
// template only prints numbers.
type plot struct {
	Width, Height int
	// Points is the polyline's points attribute ("x,y x,y ..."); empty
	// when there are fewer than two samples.
	Points string
	Max    string // the largest value, labelled on the axis
	Last   string // the latest value
	Span   string // time covered by the samples
	N      int    // samples
}

// sampleOffsets and sampleSeconds select what a plot draws.
func sampleOffsets(s lagSample) float64 { return float64(s.Offsets) }
func sampleSeconds(s lagSample) float64 { return s.Seconds }

func newPlot(samples []lagSample, value func(lagSample) float64, w, h int) plot {
	p := plot{Width: w, Height: h, N: len(samples)}
	if len(samples) == 0 {
		return p
	}
	hi := 0.0
	for _, s := range samples {
		hi = max(hi, value(s))
	}
	p.Max = formatValue(hi)
	p.Last = formatValue(value(samples[len(samples)-1]))
	t0, t1 := samples[0].At, samples[len(samples)-1].At
	p.Span = t1.Sub(t0).Round(time.Second).String()
	if len(samples) < 2 || !t1.After(t0) {
		return p
	}
	span := float64(t1.Sub(t0))
	if hi <= 0 {
		hi = 1
	}
	var b strings.Builder
	const pad = 1.0
	for i, s := range samples {
		v := math.Max(value(s), 0) // unknown (-1) draws as 0
		x := float64(s.At.Sub(t0)) / span * float64(w)
		y := pad + (1-v/hi)*(float64(h)-2*pad)
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
	}
	p.Points = b.String()
	return p
}

func formatValue(v float64) string {
	if v < 0 {
		return "?"
	}
	if v == math.Trunc(v) && v < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return fmt.Sprintf("%.1f", v)
}
