package config

import "testing"

func BenchmarkParse(b *testing.B) {
	data, err := testdataFS.ReadFile("testdata/librechat_servers.yaml")
	if err != nil {
		b.Fatal(err)
	}
	lookupEnv := func(string) (string, bool) { return "x", true }
	for b.Loop() {
		if _, err := Parse("librechat_servers.yaml", data, lookupEnv); err != nil {
			b.Fatal(err)
		}
	}
}
