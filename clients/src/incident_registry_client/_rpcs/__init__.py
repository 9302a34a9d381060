"""One builder per RPC: keyword arguments in, a transport-neutral `Call` out.

The sync and asyncio clients expose these builders as their methods (same names, same
signatures, same docstrings), so every conversion and default lives here once.
"""
