package main

import (
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Series is one line of a throughput plot: Y by concurrency X.
type Series struct {
	Name   string
	X      []int
	Y      []float64
	Dashed bool
}

// RateSeries is the req/s of runs, by concurrency.
func RateSeries(name string, runs []Summary) Series {
	s := Series{Name: name}
	for _, r := range runs {
		s.X = append(s.X, r.Concurrency)
		s.Y = append(s.Y, r.RPS())
	}
	return s
}

// BoundSeries is the paired bound of runs, by concurrency.
func BoundSeries(name string, runs []Summary) Series {
	s := Series{Name: name, Dashed: true}
	for _, r := range runs {
		if r.Bound.PerSec > 0 {
			s.X = append(s.X, r.Concurrency)
			s.Y = append(s.Y, r.Bound.PerSec)
		}
	}
	return s
}

// HLine is a horizontal reference line (a bound, a goal).
type HLine struct {
	Name   string
	Y      float64
	Dashed bool
}

// PlotThroughput draws req/s against concurrency (log2 axis) for series,
// with reference lines, into a PNG file.
func PlotThroughput(file, title string, series []Series, lines []HLine) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "concurrent clients"
	p.Y.Label.Text = "requests per second"
	p.Legend.Top = true
	p.Legend.Left = false
	p.Y.Min = 0
	levels := map[int]bool{}
	top := 0.0
	for i, s := range series {
		pts := make(plotter.XYs, 0, len(s.X))
		for j, c := range s.X {
			pts = append(pts, plotter.XY{X: math.Log2(float64(c)), Y: s.Y[j]})
			levels[c] = true
			top = max(top, s.Y[j])
		}
		if len(pts) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		if s.Dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			l.Width = vg.Points(1)
		}
		sc.Color = plotutil.Color(i)
		sc.Shape = plotutil.Shape(i)
		p.Add(l, sc)
		p.Legend.Add(s.Name, l, sc)
	}
	for i, h := range lines {
		y := h.Y
		f := plotter.NewFunction(func(float64) float64 { return y })
		f.Color = plotutil.Color(len(series) + i)
		f.Width = vg.Points(1)
		if h.Dashed {
			f.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(f)
		p.Legend.Add(h.Name, f)
		top = max(top, y)
	}
	var ticks []plot.Tick
	lo, hi := math.Inf(1), math.Inf(-1)
	for c := range levels {
		x := math.Log2(float64(c))
		ticks = append(ticks, plot.Tick{Value: x, Label: strconv.Itoa(c)})
		lo, hi = min(lo, x), max(hi, x)
	}
	if len(ticks) > 0 {
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		p.X.Min, p.X.Max = lo-0.2, hi+0.2
	}
	p.Y.Max = top * 1.45 // room for the legend
	p.Add(plotter.NewGrid())
	return p.Save(8*vg.Inch, 4.5*vg.Inch, file)
}
