"""Stage 2: instruction data from captions (LLM-written) and from scene graphs (LLM-free programs)."""
