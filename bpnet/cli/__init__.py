"""The console scripts (bpnet-train, bpnet-predict, bpnet-plot) and the
parsing they share."""
