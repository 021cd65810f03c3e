package console

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"
)

// chart is one series drawn as bars.
type chart struct {
	Name  string
	Total int64
	Peak  int64
	SVG   template.HTML
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 320, 90
	chartPad       = 14 // room for the axis labels below
)

// barChart draws values (one per step of width step, starting at start)
// as an inline SVG bar chart with a text alternative: the name, the
// total and the peak, for screen readers.
func barChart(name, class string, start time.Time, step time.Duration, values []int64) chart {
	c := chart{Name: name}
	for _, v := range values {
		c.Total += v
		c.Peak = max(c.Peak, v)
	}
	var b strings.Builder
	label := fmt.Sprintf("%s per %s: %s in all, at most %s in one %s", name, unit(step), group(c.Total), group(c.Peak), unit(step))
	fmt.Fprintf(&b, `<svg class="chart %s" viewBox="0 0 %d %d" role="img" aria-label="%s"><title>%s</title>`,
		class, chartW, chartH+chartPad, html.EscapeString(label), html.EscapeString(label))
	fmt.Fprintf(&b, `<line class="axis" x1="0" y1="%d" x2="%d" y2="%d"/>`, chartH, chartW, chartH)
	if n := len(values); n > 0 && c.Peak > 0 {
		w := float64(chartW) / float64(n)
		for i, v := range values {
			if v == 0 {
				continue
			}
			h := float64(v) / float64(c.Peak) * (chartH - 4)
			h = max(h, 1)
			at := start.Add(time.Duration(i) * step).UTC().Format("Jan 2 15:04")
			fmt.Fprintf(&b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f"><title>%s: %s</title></rect>`,
				float64(i)*w, chartH-h, max(w-0.5, 0.5), h, at, group(v))
		}
	}
	if len(values) > 0 {
		end := start.Add(time.Duration(len(values)) * step)
		fmt.Fprintf(&b, `<text x="0" y="%d">%s</text><text x="%d" y="%d" text-anchor="end">%s</text>`,
			chartH+chartPad-2, start.UTC().Format("Jan 2 15:04"), chartW, chartH+chartPad-2, end.UTC().Format("Jan 2 15:04"))
	}
	b.WriteString(`</svg>`)
	c.SVG = template.HTML(b.String()) // built here from numbers and escaped text only
	return c
}

func unit(step time.Duration) string {
	if step >= time.Hour {
		return "hour"
	}
	return "minute"
}
