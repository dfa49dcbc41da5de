"""Start, watch and stop the embedded Temporal and NATS servers."""
