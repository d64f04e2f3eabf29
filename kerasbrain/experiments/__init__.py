"""Reproductions of published comparisons (seed result tables) as one command each."""
