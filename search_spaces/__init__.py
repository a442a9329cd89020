"""Search-space definitions (YAML), shipped as package data; see nas.search.space."""
