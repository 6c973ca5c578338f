"""``kernel-lint``'s engine: rules, their registry, the notebook reader, caching and output formats."""
