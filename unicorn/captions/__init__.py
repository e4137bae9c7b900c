"""Stage 1: sparse caption seeds become many diverse, dense, faithful captions."""
