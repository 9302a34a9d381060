"""The registry's domain model: aggregates, value objects and domain errors.

Nothing here imports grpc, protobuf or a database driver.
"""
