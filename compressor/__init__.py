"""compressor stage."""
