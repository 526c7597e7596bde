"""Telemetry: GPU and CPU samplers, energy integration and attribution to jobs, idle and hung
detection, Prometheus exposition. Pure where it can be; the samplers sit behind Protocols."""
