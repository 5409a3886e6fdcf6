"""The core: layers (each owns its parameters), losses, the model and gradient
checks, written on the Array API only. It imports nothing above it (see
docs/architecture.md)."""
