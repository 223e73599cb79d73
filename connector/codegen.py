"""Generated code, made one way for the three generators that use it.

``normalize/builders.py`` (payload -> Avro-ready dict), ``serde/fastwire.py``
(dict -> Avro bytes) and ``serde/direct.py`` (payload -> Avro bytes in one
step) each emit Python source from our own schemas and field layouts, once
per family at start. What they share lives here: constants referred to by
name from the generated source, fresh local names, the collected helper
functions, the type checks they spell the same way, and compiling the
source into a function that keeps its source (``__generated_source__``) for
tests and for a reader who wants to see what runs.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from typing import Any

# A value that is a Python int fitting Avro's long (``{v}``: the variable).
LONG_CHECK = "type({v}) is not int or not -9223372036854775808 <= {v} <= 9223372036854775807"

# Decimal arithmetic without rounding, for scaling exact values by powers of ten.
EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


class CodeGen:
    """Constants and helper functions of one piece of generated source."""

    def __init__(self) -> None:
        self.consts: dict[str, Any] = {}
        self._const_ids: dict[Any, str] = {}
        self.counter = 0
        self.funcs: list[list[str]] = []  # helper functions, each a list of lines

    def fresh(self, prefix: str) -> str:
        """A name no other local or constant of this source has."""
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, value: Any, prefix: str = "K") -> str:
        """The name the generated source uses for ``value`` (one name per equal
        hashable value)."""
        key = (type(value), value) if _hashable(value) else None
        if key is not None and key in self._const_ids:
            return self._const_ids[key]
        name = self.fresh(prefix)
        self.consts[name] = value
        if key is not None:
            self._const_ids[key] = name
        return name

    def source(self, *entry: list[str]) -> str:
        """The helpers, then the entry function(s), as one module's source."""
        return "\n\n".join("\n".join(lines) for lines in [*self.funcs, *entry]) + "\n"


def compile_generated(source: str, filename: str, entry: str,
                      runtime: Mapping[str, Any], consts: Mapping[str, Any]) -> Any:
    """Compile ``source`` with ``runtime`` and ``consts`` as its globals and
    return its function ``entry``, which keeps ``source`` as ``__generated_source__``."""
    namespace = dict(runtime)
    namespace.update(consts)
    # our own source, generated from our own schemas and layouts, never input
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    function = namespace[entry]
    function.__generated_source__ = source
    return function
