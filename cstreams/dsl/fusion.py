"""Operator fusion (``StreamsBuilder(fuse=True)``): a chain of per-record stateless operators
(filter, filter_not, map, map_values, select_key) where each node feeds only the next runs as
one processor node, one loop over the batch with the user functions called directly, as a
hand-written BatchProcessor would. The loop is generated once per chain at build time.

The fused node takes the name of the chain's last operator; describe() shows it alone."""

from __future__ import annotations

import dataclasses

from cstreams.processor import BatchProcessor
from cstreams.topology import Topology, _ProcessorSpec

_STEP = {
    "map_values": "v = f{j}(v)",
    "filter": "if not f{j}(k, v):\n            continue",
    "filter_not": "if f{j}(k, v):\n            continue",
    "map": "k, v = f{j}(k, v)",
    "select_key": "k = f{j}(k, v)",
}


def compile_chain(steps, with_headers):
    """A function (keys, values, timestamps[, headers]) -> output columns running ``steps``
    [(kind, fn)] per record."""
    args = "keys, values, timestamps" + (", headers" if with_headers else "")
    lines = [f"def run({args}):",
             "    ok, ov, ot, oh = [], [], [], []",
             "    ka, va, ta, ha = ok.append, ov.append, ot.append, oh.append",
             ("    for k, v, t, h in zip(keys, values, timestamps, headers):" if with_headers
              else "    for k, v, t in zip(keys, values, timestamps):")]
    for j, (kind, _fn) in enumerate(steps):
        lines.append("        " + _STEP[kind].format(j=j))
    lines += ["        ka(k)", "        va(v)", "        ta(t)"]
    if with_headers:
        lines.append("        ha(h)")
    lines.append("    return ok, ov, ot, " + ("oh" if with_headers else "None"))
    namespace = {f"f{j}": fn for j, (_kind, fn) in enumerate(steps)}
    exec(compile("\n".join(lines), "<cstreams fused operators>", "exec"), namespace)  # noqa: S102
    return namespace["run"]


class FusedChain(BatchProcessor):
    def __init__(self, run, run_with_headers):
        self.run = run
        self.run_with_headers = run_with_headers

    def init(self, ctx):
        self.ctx = ctx

    def process_batch(self, batch):
        if batch.headers is None:
            keys, values, ts, hs = self.run(batch.keys, batch.values, batch.timestamps)
        else:
            keys, values, ts, hs = self.run_with_headers(batch.keys, batch.values,
                                                         batch.timestamps, batch.headers)
        if keys:
            self.ctx.forward_batch(keys, values, ts, hs)


def _factory(steps):
    run, run_h = compile_chain(steps, False), compile_chain(steps, True)
    return lambda: FusedChain(run, run_h)


def fuse(topology: Topology, steps: dict) -> Topology:
    """``topology`` with each chain of fusable nodes (``steps``: node name -> (kind, fn))
    replaced by one node; the topology itself when there is no chain."""
    nodes = topology._nodes
    children: dict = {name: [] for name in nodes}
    for spec in nodes.values():
        if spec.kind != "source":
            for p in spec.parents:
                children[p].append(spec.name)

    def next_in_chain(name):
        kids = children[name]
        if len(kids) == 1 and kids[0] in steps and nodes[kids[0]].parents == [name]:
            return kids[0]
        return None

    chains, taken = [], set()
    for name in nodes:
        if name not in steps or name in taken:
            continue
        chain = [name]
        while (nxt := next_in_chain(chain[-1])) is not None:
            chain.append(nxt)
        taken.update(chain)
        if len(chain) > 1:
            chains.append(chain)
    if not chains:
        return topology
    dropped = {n for chain in chains for n in chain[:-1]}
    last = {chain[-1]: chain for chain in chains}
    out = Topology()
    out._stores = dict(topology._stores)
    for name, spec in nodes.items():
        if name in dropped:
            continue
        if name in last:
            chain = last[name]
            out._nodes[name] = _ProcessorSpec(name, _factory([steps[n] for n in chain]),
                                              list(nodes[chain[0]].parents), [])
        else:
            copied: dict = {"stores": list(spec.stores)}
            if spec.kind != "source":
                copied["parents"] = list(spec.parents)
            out._nodes[name] = dataclasses.replace(spec, **copied)
    return out
