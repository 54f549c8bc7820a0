"""Gateway install and benchmarks (a package, so that `scripts.install_layout` is ours alone)."""
