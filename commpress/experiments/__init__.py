"""Experiments: distributed mean estimation, configs, runner, results store, plots, reproductions."""
