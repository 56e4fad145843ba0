"""State stores: specifications added to a topology, built once per task.

``in_memory(...)`` and ``rocksdb(...)`` give the same KeyValueStore API (get, put, delete,
get_batch, put_batch, delete_batch, range, all, flush, approximate_num_entries) with a
write-back cache in front; only where the bytes live differs.
"""

from __future__ import annotations

import os

from cstreams import names as _names
from cstreams import serde as _serde_mod
from cstreams._impl import store as _store

KeyValueStore = _store.KeyValueStore

DEFAULT_CACHE_MAX_ENTRIES = 100_000


class StoreSpec:
    """What a topology knows of a store before any task exists."""

    kind = "abstract"
    persistent = False

    def __init__(self, name, key_serde=None, value_serde=None, logging=True,
                 cache_max_entries=DEFAULT_CACHE_MAX_ENTRIES, changelog_config=None):
        from cstreams.errors import TopologyError

        # The name becomes a directory and part of a changelog topic name.
        _names.check(name, "store name", TopologyError)
        self.name = name
        self.key_serde = _serde_mod.resolve(key_serde, f"store {name!r} key serde")
        self.value_serde = _serde_mod.resolve(value_serde, f"store {name!r} value serde")
        self.logging = bool(logging)
        self.cache_max_entries = cache_max_entries
        self.changelog_config = dict(changelog_config or {})
        # A source topic that serves as the changelog (a DSL table's store): restoration reads
        # it, flushes write nothing to it, and no changelog topic is created.
        self.source_changelog = None

    def changelog_topic(self, application_id):
        if self.source_changelog is not None:
            return self.source_changelog
        return f"{application_id}-{self.name}-changelog"

    def open_backend(self, directory):
        raise NotImplementedError

    def build(self, directory=None):
        """A KeyValueStore for one task; ``directory`` is the store's own directory."""
        return KeyValueStore(
            self.name, self.open_backend(directory), self.key_serde, self.value_serde,
            self.cache_max_entries,
        )

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


class InMemoryStoreSpec(StoreSpec):
    kind = "in-memory"

    def open_backend(self, directory):
        from cstreams.stores.memory import InMemoryBackend

        return InMemoryBackend()


class RocksDBStoreSpec(StoreSpec):
    kind = "rocksdb"
    persistent = True

    def __init__(self, name, key_serde=None, value_serde=None, logging=True,
                 cache_max_entries=DEFAULT_CACHE_MAX_ENTRIES, changelog_config=None,
                 options=None):
        super().__init__(name, key_serde, value_serde, logging, cache_max_entries,
                         changelog_config)
        self.options = dict(options or {})

    def open_backend(self, directory):
        from cstreams.stores.rocksdb_backend import RocksDBBackend

        if directory is None:
            raise ValueError(f"RocksDB store {self.name!r} needs a directory")
        os.makedirs(directory, exist_ok=True)
        return RocksDBBackend(directory, **self.options)


def in_memory(name, key_serde=None, value_serde=None, *, logging=True,
              cache_max_entries=DEFAULT_CACHE_MAX_ENTRIES, changelog_config=None):
    return InMemoryStoreSpec(name, key_serde, value_serde, logging, cache_max_entries,
                             changelog_config)


def rocksdb(name, key_serde=None, value_serde=None, *, logging=True,
            cache_max_entries=DEFAULT_CACHE_MAX_ENTRIES, changelog_config=None, options=None):
    return RocksDBStoreSpec(name, key_serde, value_serde, logging, cache_max_entries,
                            changelog_config, options)


__all__ = ["KeyValueStore", "StoreSpec", "in_memory", "rocksdb"]
