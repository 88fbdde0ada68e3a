package codec

import "math/bits"

// SWAR ("SIMD within a register") checks eight bytes at a time with
// ordinary 64-bit arithmetic. The bit tricks below report whether any byte
// of a word is in a class; a borrow can only add false hits above a true
// one, so they never miss, and the slow path re-checks byte by byte.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// controlMask sets the high bit of the bytes of x (little-endian) that are a
// control byte (below 0x20) or DEL, and possibly of bytes above the first
// such byte; the lowest set bit always marks the first one. The first term
// is the "has a byte less than n" trick with n = 0x20, the second the "has a
// zero byte" trick on x XOR 0x7f…; masking with ^x and ^y drops bytes of
// 0x80 and above, which are obs-text.
func controlMask(x uint64) uint64 {
	y := x ^ (ones * 0x7f)
	return ((x-ones*0x20)&^x | (y-ones)&^y) & highs
}

// firstControl returns the index in x of the first byte controlMask marks;
// m must not be zero.
func firstControl(m uint64) int {
	return bits.TrailingZeros64(m) >> 3
}

// invalidValueByte returns the index of the first byte of b that may not
// appear in a field value (a control character other than HTAB, or DEL), or
// -1 when there is none. HTAB is rare, so it takes the slow path.
func invalidValueByte[T string | []byte](b T) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := load64(b, i)
		if controlMask(x) == 0 {
			continue
		}
		for j := i; j < i+8; j++ {
			if !fieldVChar[b[j]] {
				return j
			}
		}
	}
	for ; i < len(b); i++ {
		if !fieldVChar[b[i]] {
			return i
		}
	}
	return -1
}

// load64 reads b[i:i+8] as a little-endian word; the compiler turns it into
// one load.
func load64[T string | []byte](b T, i int) uint64 {
	b = b[i : i+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// load32 reads b[i:i+4] as a little-endian word.
func load32[T string | []byte](b T, i int) uint32 {
	b = b[i : i+4]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
