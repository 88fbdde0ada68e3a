package codec

// SWAR ("SIMD within a register") checks eight bytes at a time with
// ordinary 64-bit arithmetic. The classic bit tricks below report whether
// any byte of a word is below a bound or equal to a value; they never miss a
// byte, and the slow path re-checks one byte at a time to find which.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasLess reports whether some byte of x is less than n (n <= 128).
func hasLess(x, n uint64) bool {
	return (x-ones*n)&^x&highs != 0
}

// hasByte reports whether some byte of x equals c.
func hasByte(x, c uint64) bool {
	y := x ^ (ones * c)
	return (y-ones)&^y&highs != 0
}

// invalidValueByte returns the index of the first byte of b that may not
// appear in a field value (a control character other than HTAB, or DEL), or
// -1 when there is none. HTAB is rare, so it takes the slow path.
func invalidValueByte[T string | []byte](b T) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := load64(b, i)
		if !hasLess(x, 0x20) && !hasByte(x, 0x7f) {
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
