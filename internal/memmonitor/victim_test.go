package memmonitor

import (
	"testing"
	"time"
)

func TestPickVictim(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	tests := []struct {
		name string
		c    []Candidate
		want int
	}{
		{"none", nil, -1},
		{"empty", []Candidate{}, -1},
		{"one non-retriable", []Candidate{{ID: "a", Started: at(0)}}, 0},
		{
			name: "newest first",
			c: []Candidate{
				{ID: "old", Retriable: true, Started: at(0), Mem: 8 << 30},
				{ID: "new", Retriable: true, Started: at(30), Mem: 1 << 20},
				{ID: "mid", Retriable: true, Started: at(10), Mem: 4 << 30},
			},
			want: 1,
		},
		{
			name: "retriable before non-retriable, however new",
			c: []Candidate{
				{ID: "fresh-actor", IsActor: true, Started: at(60), Mem: 8 << 30},
				{ID: "old-task", Retriable: true, Started: at(0)},
				{ID: "fresh-task", Started: at(59)},
			},
			want: 1,
		},
		{
			name: "non-retriable when nothing else: newest",
			c: []Candidate{
				{ID: "a", Started: at(5)},
				{ID: "b", Started: at(7), IsActor: true},
				{ID: "c", Started: at(6)},
			},
			want: 1,
		},
		{
			name: "same start: more memory",
			c: []Candidate{
				{ID: "small", Retriable: true, Started: at(3), Mem: 100},
				{ID: "big", Retriable: true, Started: at(3), Mem: 300},
				{ID: "mid", Retriable: true, Started: at(3), Mem: 200},
				{ID: "older-bigger", Retriable: true, Started: at(2), Mem: 900},
			},
			want: 1,
		},
		{
			name: "full tie: the first",
			c: []Candidate{
				{ID: "x", Retriable: true, Started: at(3), Mem: 100},
				{ID: "y", Retriable: true, Started: at(3), Mem: 100},
			},
			want: 0,
		},
		{
			name: "actors and tasks alike",
			c: []Candidate{
				{ID: "task", Retriable: true, Started: at(1)},
				{ID: "actor", Retriable: true, IsActor: true, Started: at(2)},
			},
			want: 1,
		},
		{
			name: "same instant in another zone is a tie",
			c: []Candidate{
				{ID: "utc", Retriable: true, Started: at(3), Mem: 1},
				{ID: "local", Retriable: true, Started: at(3).In(time.FixedZone("X", 3600)), Mem: 2},
			},
			want: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PickVictim(tt.c); got != tt.want {
				t.Errorf("PickVictim = %d, want %d", got, tt.want)
			}
		})
	}
}
