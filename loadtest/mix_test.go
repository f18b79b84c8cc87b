package loadtest

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    [numOps]int
		wantErr string
	}{
		{in: "get=80,set=15,set_many=3,get_many=2", want: [numOps]int{OpGet: 80, OpSet: 15, OpSetMany: 3, OpGetMany: 2}},
		{in: " set = 1 , get=0 ", want: [numOps]int{OpSet: 1}},
		{in: "set_many=100", want: [numOps]int{OpSetMany: 100}},
		{in: "", wantErr: "not name=weight"},
		{in: "get", wantErr: "not name=weight"},
		{in: "get=1,delete=1", wantErr: `unknown operation "delete"`},
		{in: "get=1,get=2", wantErr: "get appears twice"},
		{in: "get=-1", wantErr: "non-negative integer"},
		{in: "get=1.5", wantErr: "non-negative integer"},
		{in: "get=0,set=0", wantErr: "every weight is zero"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := ParseMix(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMix(%q) error %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMix(%q): %v", tt.in, err)
			}
			for op := range numOps {
				if got := m.Weight(op); got != tt.want[op] {
					t.Errorf("weight of %s = %d, want %d", op, got, tt.want[op])
				}
			}
			again, err := ParseMix(m.String())
			if err != nil || again != m {
				t.Errorf("ParseMix(%q) (its own String) = %v, %v; want the same mix", m.String(), again, err)
			}
		})
	}
}

func TestMixPicksInProportion(t *testing.T) {
	m, err := ParseMix("get=70,set=20,get_many=10")
	if err != nil {
		t.Fatal(err)
	}
	const draws = 100000
	var got [numOps]int
	rng := rand.New(rand.NewPCG(1, 2))
	for range draws {
		got[m.pick(rng)]++
	}
	for op := range numOps {
		want := draws * m.Weight(op) / 100
		if diff := got[op] - want; diff < -draws/100 || diff > draws/100 {
			t.Errorf("%s picked %d times in %d, want about %d", op, got[op], draws, want)
		}
	}
}
