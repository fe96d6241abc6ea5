"""Pull sources and retention tasks (being built)."""
