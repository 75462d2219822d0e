package main

import "path/filepath"

// orSamples returns paths, or when there are none the sample texts in
// testdata/ (found from the repository's root or from this directory).
func orSamples(paths []string) []string {
	if len(paths) > 0 {
		return paths
	}
	for _, dir := range []string{"testdata", "examples/wordcount/testdata"} {
		if m, _ := filepath.Glob(filepath.Join(dir, "*.txt")); len(m) > 0 {
			return m
		}
	}
	return nil
}
