"""The engine: train one phase (state, step, sharding, loop). See docs/architecture.md."""
