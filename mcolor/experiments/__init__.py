"""Experiments: grids of bundle runs (``mcolor sweep``), their statistics, tables and plots."""
