"""Evaluation of sweeps: scorers (checks and a model-graded rubric), and what their scores add up to."""
