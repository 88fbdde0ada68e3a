package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The chart: one panel per mode (median requests per server CPU-second)
// and one for the memory per idle connection, two panels a row, one bar per
// server, each labelled with its value.

const (
	panelW, panelH = 600, 400
	headerH        = 44
)

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grey  = color.RGBA{200, 200, 200, 255}
	red   = color.RGBA{200, 30, 30, 255}
	// colours per server, so a server keeps its colour across panels
	serverColours = map[string]color.RGBA{
		"loophttp":  {31, 119, 180, 255},
		"plaintext": {23, 190, 207, 255},
		"api":       {148, 103, 189, 255},
		"apireuse":  {197, 176, 213, 255},
		"ceiling":   {127, 127, 127, 255},
		"fasthttp":  {255, 127, 14, 255},
		"nbio":      {44, 160, 44, 255},
		"hertz":     {188, 189, 34, 255},
		"nethttp":   {214, 39, 40, 255},
	}
	shortNames = map[string]string{"loophttp": "serve", "nethttp": "net/http", "plaintext": "engine", "api": "api", "apireuse": "api reuse"}
)

type bar struct {
	server string
	value  float64
	label  string
}

type panel struct {
	title string
	bars  []bar
	// line, when above zero, is drawn dashed across the panel as a
	// reference (the title says what it is)
	line float64
}

func (s *summary) chart(path, machine string) error {
	var panels []panel
	for _, mode := range s.modes {
		p := panel{title: title(modeTitles, mode) + ": requests per server CPU-second"}
		for _, srv := range s.servers {
			c := s.cells[[2]string{mode, srv}]
			if c == nil || c.rounds == 0 {
				continue
			}
			p.bars = append(p.bars, bar{srv, c.perCPU, thousands(c.perCPU)})
		}
		panels = append(panels, p)
	}
	if len(s.idles) > 0 {
		p := panel{title: fmt.Sprintf("bytes of RSS per idle connection (%s conns); dashed: 1 KiB",
			thousands(float64(s.idles[0].conns))), line: 1024}
		for _, srv := range s.servers {
			for _, i := range s.idles {
				if i.server == srv {
					p.bars = append(p.bars, bar{srv, i.bytesPerConn, thousands(i.bytesPerConn)})
				}
			}
		}
		panels = append(panels, p)
	}
	cols := 2
	rows := (len(panels) + cols - 1) / cols
	img := image.NewRGBA(image.Rect(0, 0, cols*panelW, headerH+rows*panelH))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)

	var date, cpu string
	for _, line := range strings.Split(machine, "\n") {
		if v, ok := strings.CutPrefix(line, "date: "); ok {
			date = v
		}
		if v, ok := strings.CutPrefix(line, "cpu: "); ok {
			cpu = v
		}
	}
	text(img, 12, 18, black, fmt.Sprintf("loophttp and peers, plaintext \"Hello, World!\": medians of %d interleaved rounds", s.rounds))
	text(img, 12, 36, black, fmt.Sprintf("server pinned to CPU 0, wrk to CPU 1; %s; %s", cpu, date))
	for i, p := range panels {
		x0 := (i % cols) * panelW
		y0 := headerH + (i/cols)*panelH
		drawPanel(img, x0, y0, p)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func drawPanel(img *image.RGBA, x0, y0 int, p panel) {
	const (
		left, right = 20, 20
		top, bottom = 50, 40
		labelAbove  = 6
		barFraction = 0.7
		frameInset  = 6
	)
	rect(img, x0+frameInset, y0+frameInset, x0+panelW-frameInset, y0+frameInset+1, grey)
	text(img, x0+left, y0+28, black, p.title)
	maxV := p.line
	for _, b := range p.bars {
		maxV = max(maxV, b.value)
	}
	if maxV <= 0 || len(p.bars) == 0 {
		return
	}
	plotTop := y0 + top + 16 // room for the value labels
	baseY := y0 + panelH - bottom
	plotH := float64(baseY - plotTop)
	slot := (panelW - left - right) / len(p.bars)
	bw := int(float64(slot) * barFraction)
	rect(img, x0+left, baseY, x0+panelW-right, baseY+1, black)
	for i, b := range p.bars {
		cx := x0 + left + i*slot + slot/2
		h := int(b.value / maxV * plotH)
		col, ok := serverColours[b.server]
		if !ok {
			col = grey
		}
		rect(img, cx-bw/2, baseY-h, cx+bw/2, baseY, col)
		centred(img, cx, baseY-h-labelAbove, black, b.label)
		name := b.server
		if n, ok := shortNames[name]; ok {
			name = n
		}
		centred(img, cx, baseY+18, black, name)
	}
	if p.line > 0 {
		y := baseY - int(p.line/maxV*plotH)
		for x := x0 + left; x < x0+panelW-right; x += 8 {
			rect(img, x, y, x+4, y+1, red)
		}
	}
}

func rect(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	draw.Draw(img, image.Rect(x0, y0, x1, y1), image.NewUniform(c), image.Point{}, draw.Src)
}

func text(img *image.RGBA, x, y int, c color.RGBA, s string) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func centred(img *image.RGBA, cx, y int, c color.RGBA, s string) {
	w := font.MeasureString(basicfont.Face7x13, s).Ceil()
	text(img, cx-w/2, y, c, s)
}
