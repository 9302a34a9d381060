"""Application services: validate commands, run them against aggregates, and commit them."""
