"""Scoring a model: metrics with CIs, the test-once ledger, report plots, breakdowns, Grad-CAM."""
