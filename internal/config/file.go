package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// maxFile bounds a config file; real ones are a few hundred bytes.
const maxFile = 1 << 20

// Decode reads a JSON config over base: fields present in the JSON replace
// base's, unknown fields are an error.
func Decode(r io.Reader, base Config) (Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFile+1))
	if err != nil {
		return base, err
	}
	if len(data) > maxFile {
		return base, fmt.Errorf("config larger than %d bytes", maxFile)
	}
	if errs := shapeErrors(data); len(errs) > 0 {
		return base, fmt.Errorf("invalid config: %w", errs)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	c := base
	if err := dec.Decode(&c); err != nil {
		return base, fmt.Errorf("invalid config JSON: %w", err)
	}
	if dec.More() {
		return base, fmt.Errorf("invalid config JSON: trailing data after the object")
	}
	return c, nil
}

// Load reads the config file at path over base.
func Load(path string, base Config) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return base, err
	}
	defer f.Close()
	c, err := Decode(f, base)
	if err != nil {
		return base, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
