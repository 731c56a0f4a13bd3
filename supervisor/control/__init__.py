"""Runs and watches the system.

The control loop, metrics, notifier, invariants, the runtime's entry points.
"""
