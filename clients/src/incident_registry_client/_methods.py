"""Turning the `_rpcs` builders into client methods, with the builders' signatures and docs.

`RegistryClient.report_shooting` is `unary(rpcs.report_shooting)`: a method taking exactly
the builder's keyword arguments, documented by the builder's docstring, that builds the call
and runs it on the client's transport. The asyncio client makes its methods from the same
builders, so the two clients cannot drift apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, get_args


def adopt(
    method: Callable[..., Any],
    build: Callable[..., Any],
    returns: Callable[[Any], Any],
) -> None:
    """Give `method` the name, docstring and signature (with `self`) of `build`.

    The return annotation is `returns(T)` for a builder returning `Call[T]`, `Pages[T]` or
    `StreamCall[T]`.
    """
    signature = inspect.signature(build, eval_str=True)
    (item,) = get_args(signature.return_annotation)
    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_parameter, *signature.parameters.values()],
        return_annotation=returns(item),
    )
    method.__name__ = build.__name__
    method.__qualname__ = build.__name__
    method.__doc__ = build.__doc__


def qualify(cls: type) -> None:
    """Name the adopted methods of `cls` as its own (`RegistryClient.report_shooting`)."""
    for name, value in vars(cls).items():
        if inspect.isfunction(value) and value.__qualname__ == name:
            value.__qualname__ = f"{cls.__qualname__}.{name}"
