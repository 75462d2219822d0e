package alloc

import (
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzAllocator decodes a region and a sequence of operations from the
// input, runs them against an Allocator and the brute-force model, and checks
// every invariant after every operation.
//
// Layout: byte 0 picks the alignment (8 << (b%4)); bytes 1-2 the capacity
// in alignment units, plus byte 1's low bits as an unaligned tail that New
// must drop. Then each 3-byte group is an operation: an opcode byte and a
// 16-bit little-endian argument.
func FuzzAllocator(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 10, 0, 0, 20, 0, 2, 0, 0, 2, 0, 0})
	f.Add([]byte{2, 64, 0, 0, 0x40, 0x10, 1, 0x80, 0x20, 0, 0xff, 0x0f, 2, 1, 0, 3, 9, 0, 2, 0, 0})
	f.Add([]byte{3, 0xff, 0xff, 0, 0xff, 0x7f, 1, 1, 0, 2, 0, 0, 3, 0, 0, 3, 1, 0, 2, 0, 0})
	f.Add([]byte{1, 7, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 2, 1, 0, 2, 0, 0, 4, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		align := int64(8) << (data[0] % 4)
		size := int64(binary.LittleEndian.Uint16(data[1:3]))*align + int64(data[1]&7)
		a, err := New(size, align)
		if err != nil {
			t.Fatalf("New(%d, %d): %v", size, align, err)
		}
		m := &shadow{capacity: size &^ (align - 1)}
		if err := m.compare(a); err != nil {
			t.Fatalf("after New(%d, %d): %v", size, align, err)
		}

		data = data[3:]
		for i := 0; i+3 <= len(data) && i < 3*1024; i += 3 {
			arg := binary.LittleEndian.Uint16(data[i+1:])
			switch data[i] % 4 {
			case 0, 1:
				// Low 12 bits are a size in bytes, top 4 a shift, so small
				// and huge sizes (and 0) all occur.
				n := int64(arg&0xfff) << (arg >> 12)
				rounded := (n + align - 1) &^ (align - 1)
				gaps := m.gaps()
				want, fits := bestFit(gaps, rounded)
				if n <= 0 {
					fits = false
				}
				off, ok := a.Alloc(n)
				if ok != fits || ok && off != want {
					t.Fatalf("Alloc(%d) = %d, %v; best fit is %d, %v", n, off, ok, want, fits)
				}
				if ok {
					if err := m.add(off, rounded); err != nil {
						t.Fatalf("Alloc(%d): %v", n, err)
					}
				}
			case 2:
				if len(m.live) == 0 {
					continue
				}
				x := m.live[int(arg)%len(m.live)]
				if err := a.Free(x.off); err != nil {
					t.Fatalf("Free of live block: %v", err)
				}
				m.remove(x.off)
			case 3:
				// Any offset at all: a live start must free, anything else
				// must fail and change nothing.
				off := int64(arg)*8 - 64
				before := a.Stats()
				err := a.Free(off)
				if _, live := m.find(off); live {
					if err != nil {
						t.Fatalf("Free(%d) of live block: %v", off, err)
					}
					m.remove(off)
					break
				}
				var e *Error
				if !errors.As(err, &e) || e.Offset != off {
					t.Fatalf("Free(%d) of no live block = %v, want *Error", off, err)
				}
				if after := a.Stats(); after != before {
					t.Fatalf("failed Free(%d) changed stats from %+v to %+v", off, before, after)
				}
			}
			if err := m.compare(a); err != nil {
				t.Fatalf("after op %d: %v", i/3, err)
			}
		}

		for _, x := range m.live {
			if err := a.Free(x.off); err != nil {
				t.Fatal(err)
			}
		}
		m.live, m.used = nil, 0
		if err := m.compare(a); err != nil {
			t.Fatalf("after freeing everything: %v", err)
		}
		if m.capacity > 0 && a.Stats().FreeBlocks != 1 {
			t.Fatalf("after freeing everything: %+v, want one free block", a.Stats())
		}
	})
}
