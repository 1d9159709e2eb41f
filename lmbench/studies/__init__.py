"""Studies built from many measurements: sweeps, comparisons of two result sets, the warm-up study."""
