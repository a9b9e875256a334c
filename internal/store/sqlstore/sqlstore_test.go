package sqlstore

import (
	"testing"
	"testing/fstest"
	"time"
)

func TestTimeEncoding(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"zero", time.Time{}, time.Time{}},
		{"nanoseconds kept", time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC), time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)},
		{"zone becomes UTC", time.Date(2026, 3, 1, 21, 0, 0, 0, time.FixedZone("KST", 9*3600)), time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		{"far future clamps", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(0, 1<<63-1).UTC()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tm(ts(tt.in))
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("tm(ts(%v)) = %v, want %v in UTC", tt.in, got, tt.want)
			}
		})
	}
	if ts(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) <= ts(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("clamped far future sorts before a nearer time")
	}
}

func TestReadMigrations(t *testing.T) {
	ms, err := readMigrations(fstest.MapFS{
		"0002_b.sql": {Data: []byte("B")},
		"0001_a.sql": {Data: []byte("A")},
		"0010_c.sql": {Data: []byte("C")},
		"README.txt": {Data: []byte("ignored")},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, m := range ms {
		got = append(got, m.version)
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 10 {
		t.Errorf("versions = %v, want [1 2 10]", got)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"duplicate": {"0001_a.sql": {}, "1_b.sql": {}},
		"no number": {"init.sql": {}},
	} {
		if _, err := readMigrations(fsys); err == nil {
			t.Errorf("%s: readMigrations succeeded", name)
		}
	}
}
