"""Tests of the container image and the deployment files."""
