package objects

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// quantitySuffixes are Kubernetes' resource suffixes: binary (Ki = 1024)
// and decimal (k = 1000), and m for thousandths.
var quantitySuffixes = []struct {
	suffix string
	factor *big.Rat
}{
	{"Ki", pow(1024, 1)}, {"Mi", pow(1024, 2)}, {"Gi", pow(1024, 3)}, {"Ti", pow(1024, 4)}, {"Pi", pow(1024, 5)}, {"Ei", pow(1024, 6)},
	{"k", pow(1000, 1)}, {"M", pow(1000, 2)}, {"G", pow(1000, 3)}, {"T", pow(1000, 4)}, {"P", pow(1000, 5)}, {"E", pow(1000, 6)},
	{"m", big.NewRat(1, 1000)},
}

func pow(base, exp int64) *big.Rat {
	return new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(base), big.NewInt(exp), nil))
}

// quantityGrammar is apimachinery's ParseQuantity grammar, without the
// minus sign no resource amount may carry: a number (1, 1.5, 1., .5), then
// a binary suffix (Ki…Ei), a decimal one (m, k, M…E) or a decimal exponent
// (e3, E-2). schemas/cue/meta.cue's #Quantity spells the same.
var quantityGrammar = regexp.MustCompile(`^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[mkMGTPE]|[eE][+-]?[0-9]+)?$`)

// rat parses the quantity exactly.
func (q Quantity) rat() (*big.Rat, error) {
	s := string(q)
	if !quantityGrammar.MatchString(s) {
		return nil, fmt.Errorf("invalid quantity %q", s)
	}
	s = strings.TrimPrefix(s, "+")
	factor := big.NewRat(1, 1)
	for _, sf := range quantitySuffixes {
		if strings.HasSuffix(s, sf.suffix) {
			s, factor = strings.TrimSuffix(s, sf.suffix), sf.factor
			break
		}
	}
	// What is left is a decimal number with an optional exponent, which
	// big.Rat reads exactly; the grammar kept out its fractions and bases.
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("invalid quantity %q", string(q))
	}
	return r.Mul(r, factor), nil
}

// Value returns the quantity rounded up to a whole unit (bytes for memory).
// An empty quantity is zero.
func (q Quantity) Value() (int64, error) { return q.scaled(1) }

// Milli returns the quantity in thousandths, rounded up (millicores for CPU).
func (q Quantity) Milli() (int64, error) { return q.scaled(1000) }

func (q Quantity) scaled(by int64) (int64, error) {
	if q == "" {
		return 0, nil
	}
	r, err := q.rat()
	if err != nil {
		return 0, err
	}
	r.Mul(r, big.NewRat(by, 1))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if new(big.Rat).SetInt(n).Cmp(r) < 0 {
		n.Add(n, big.NewInt(1))
	}
	if !n.IsInt64() {
		return 0, fmt.Errorf("quantity %q is too large", string(q))
	}
	return n.Int64(), nil
}
