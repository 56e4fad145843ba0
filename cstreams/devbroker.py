"""The embedded Tansu development broker: a re-export of ``testbrokers.tansu``.

``make demo``, bench/ and older code import it from here.  The launcher itself
lives in the checkout's ``testbrokers/`` package with the Apache Kafka one;
from a checkout this module puts the checkout on ``sys.path`` when needed.

    python -m cstreams.devbroker      # prints bootstrap_servers=127.0.0.1:PORT
"""

from __future__ import annotations

import os
import sys

try:
    from testbrokers import tansu as _tansu
except ImportError:  # an editable install maps only cstreams: use the checkout
    _root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(_root, "testbrokers")):
        raise ImportError(
            "cstreams.devbroker needs the testbrokers/ package of a cstreams checkout"
        ) from None
    sys.path.insert(0, _root)
    from testbrokers import tansu as _tansu

DevBroker = _tansu.DevBroker
create_topics = _tansu.create_topics
find_tansu = _tansu.find_tansu
free_port = _tansu.free_port
main = _tansu.main

__all__ = ["find_tansu", "DevBroker", "create_topics", "free_port", "main"]

if __name__ == "__main__":
    sys.exit(main())
