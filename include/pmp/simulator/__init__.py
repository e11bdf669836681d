"""ISO simulator (``pmp simulate``): one module per ISO next to the generic server."""
