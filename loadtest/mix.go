// Package loadtest drives a load against a service and measures it: a weighted mix of
// operations, run closed loop (a fixed number of workers, back to back) or open loop (a fixed
// arrival rate, latency counted from each request's scheduled send time), with latencies kept in
// log-linear histograms of bounded size and a report per operation.
//
// The operations themselves come from a [Target]; [ZatoTarget] is the one for attrcache's (and
// Zato SSO's) user-attribute endpoints.
package loadtest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Op is one kind of operation of the mix.
type Op int

// The operations a mix may name.
const (
	OpGet     Op = iota // read one attribute
	OpSet               // write one attribute
	OpSetMany           // write several attributes in one request
	OpGetMany           // read several attributes in one request
	numOps
)

var opNames = [numOps]string{OpGet: "get", OpSet: "set", OpSetMany: "set_many", OpGetMany: "get_many"}

// String returns the name a mix uses for op.
func (op Op) String() string {
	if op < 0 || op >= numOps {
		return "Op(" + strconv.Itoa(int(op)) + ")"
	}
	return opNames[op]
}

// Mix is a weighted choice among operations. The zero Mix chooses nothing; build one with
// [ParseMix].
type Mix struct {
	weights [numOps]int
	total   int
}

// ParseMix reads a mix such as "get=80,set=15,set_many=3,get_many=2": comma-separated
// name=weight pairs, each name at most once, weights non-negative integers, at least one of
// them positive. The weights are relative and need not add up to 100.
func ParseMix(s string) (Mix, error) {
	var m Mix
	var seen [numOps]bool
	for part := range strings.SplitSeq(s, ",") {
		name, weightText, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found {
			return Mix{}, fmt.Errorf("mix %q: %q is not name=weight", s, part)
		}
		op, ok := opByName(strings.TrimSpace(name))
		if !ok {
			return Mix{}, fmt.Errorf("mix %q: unknown operation %q (want one of %s)", s, name, strings.Join(opNames[:], ", "))
		}
		if seen[op] {
			return Mix{}, fmt.Errorf("mix %q: %s appears twice", s, op)
		}
		seen[op] = true
		weight, err := strconv.Atoi(strings.TrimSpace(weightText))
		if err != nil || weight < 0 {
			return Mix{}, fmt.Errorf("mix %q: the weight of %s must be a non-negative integer, got %q", s, op, weightText)
		}
		m.weights[op] = weight
		m.total += weight
	}
	if m.total == 0 {
		return Mix{}, fmt.Errorf("mix %q: every weight is zero", s)
	}
	return m, nil
}

func opByName(name string) (Op, bool) {
	for op, n := range opNames {
		if n == name {
			return Op(op), true
		}
	}
	return 0, false
}

// Weight returns op's weight in the mix.
func (m Mix) Weight(op Op) int { return m.weights[op] }

// Uses reports whether the mix ever chooses op.
func (m Mix) Uses(op Op) bool { return m.weights[op] > 0 }

// String returns the mix in the form ParseMix reads, leaving out operations of weight zero.
func (m Mix) String() string {
	var parts []string
	for op, w := range m.weights {
		if w > 0 {
			parts = append(parts, opNames[op]+"="+strconv.Itoa(w))
		}
	}
	return strings.Join(parts, ",")
}

// pick chooses an operation with probability proportional to its weight. The mix must not be
// the zero Mix.
func (m Mix) pick(rng *rand.Rand) Op {
	n := rng.IntN(m.total)
	for op, w := range m.weights {
		if n < w {
			return Op(op)
		}
		n -= w
	}
	panic("loadtest: pick on an empty mix")
}
