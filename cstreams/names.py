"""Name rules for what becomes a Kafka topic or a path: application_id, nodes, stores, topics.

As Kafka (and Kafka Streams for application.id): letters, digits, '.', '_' and '-', at most
249 characters, and never "." or "..". Names built from them (changelog and repartition
topics) are checked against the same limit, and every path built from a name is checked to
stay inside the state directory (``inside``), where the path is built as well.
"""

from __future__ import annotations

import os
import re

LEGAL = re.compile(r"^[A-Za-z0-9._-]+$")
MAX_TOPIC_LENGTH = 249


def problem(name) -> str | None:
    """Why ``name`` is not a legal name, or None."""
    if not isinstance(name, str) or not name:
        return "it must be a non-empty string"
    if name in (".", ".."):
        return "'.' and '..' are not allowed"
    if len(name) > MAX_TOPIC_LENGTH:
        return f"it is {len(name)} characters long; the limit is {MAX_TOPIC_LENGTH}"
    if not LEGAL.match(name):
        bad = sorted({c for c in name if not LEGAL.match(c)})
        return (f"it contains {''.join(bad)!r}: only letters, digits, '.', '_' and '-' are "
                f"allowed (Kafka's legal characters)")
    return None


def check(name, what, error):
    """Raise ``error`` (an exception class) naming ``what`` and ``name`` if it is not legal."""
    why = problem(name)
    if why is not None:
        raise error(f"{what} {name!r} is invalid: {why}")
    return name


def inside(base, *parts, what="path", error=None):
    """``os.path.join(base, *parts)``, checked to stay inside ``base`` (after resolving '..'
    and symbolic links of the parts)."""
    path = os.path.join(base, *parts)
    root = os.path.realpath(base)
    real = os.path.realpath(path)
    if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
        if error is None:
            from cstreams.errors import ConfigurationError as error
        raise error(f"{what} {path!r} would leave the state directory {base!r}")
    return path
