"""Trace-driven simulation of the scheduler at cluster scale."""
