"""The gRPC edge: protobuf conversion, servicers, handler wrapping and the server factory.

This is the only part of the service that imports grpc or generated protobuf code.
"""
