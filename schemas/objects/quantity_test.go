package objects

import "testing"

func TestQuantity(t *testing.T) {
	for _, tc := range []struct {
		q            Quantity
		value, milli int64
	}{
		{"", 0, 0}, {"1", 1, 1000}, {"500m", 1, 500}, {"0.5", 1, 500}, {"1.5", 2, 1500}, {"2k", 2000, 2000000},
		{"128Mi", 128 << 20, 128 << 20 * 1000}, {"1Gi", 1 << 30, 1 << 30 * 1000}, {"1G", 1e9, 1e12}, {"1.5Gi", 3 << 29, 3 << 29 * 1000},
		// apimachinery's grammar: bare fractions, a trailing point,
		// exponents in either case, an explicit plus sign.
		{".5", 1, 500}, {"1.", 1, 1000}, {"129e6", 129e6, 129e9}, {"1E3", 1000, 1e6}, {"12e-3", 1, 12}, {"+2", 2, 2000},
		{"0.1m", 1, 1}, {"1e+06", 1e6, 1e9},
	} {
		v, err1 := tc.q.Value()
		m, err2 := tc.q.Milli()
		if err1 != nil || err2 != nil || v != tc.value || m != tc.milli {
			t.Errorf("%q: value %d milli %d (%v %v), want %d %d", tc.q, v, m, err1, err2, tc.value, tc.milli)
		}
	}
	for _, bad := range []Quantity{"x", "-1", "1/2", "1e", "1e3m", "0x10", "1.5.5", ".", "1 Gi", "1Ki5", "99999999999E"} {
		if _, err := bad.Milli(); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
