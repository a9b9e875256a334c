package config

import "embed"

//go:embed testdata/*.yaml testdata/*.json
var testdataFS embed.FS
