package runtimeenv

import (
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
)

// Progress shows an upload of total bytes as a progress bar on stderr
// when stderr is a terminal, and nothing otherwise. Add counts bytes
// sent; Done ends the bar. The zero Progress (and a nil one) does
// nothing.
type Progress struct {
	bar *progressbar.ProgressBar
}

// NewProgress starts a bar described by desc ("upload sha256:1a2b…").
func NewProgress(total int64, desc string) *Progress {
	if !isTerminal(os.Stderr) {
		return &Progress{}
	}
	return &Progress{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100_000_000), // 100 ms
		progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(os.Stderr, "\n") }),
		progressbar.OptionClearOnFinish(),
	)}
}

// Add counts n more bytes sent.
func (p *Progress) Add(n int) {
	if p != nil && p.bar != nil {
		_ = p.bar.Add(n)
	}
}

// Done ends the bar.
func (p *Progress) Done() {
	if p != nil && p.bar != nil {
		_ = p.bar.Finish()
	}
}

// Reader wraps r so that what is read from it counts as sent.
func (p *Progress) Reader(r io.Reader) io.Reader {
	if p == nil || p.bar == nil {
		return r
	}
	return &progressReader{r: r, p: p}
}

type progressReader struct {
	r io.Reader
	p *Progress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.Add(n)
	return n, err
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
