"""The at-least-once committer without a broker: an offset commit that fails because the broker
or the group is away leaves the offsets pending; any other failure stops the commit."""

from __future__ import annotations

import pytest

pytest.importorskip("confluent_kafka")

from confluent_kafka import KafkaError, KafkaException  # noqa: E402

from cstreams.errors import CommitError  # noqa: E402
from cstreams.internals import kafka  # noqa: E402
from cstreams.runtime.commit import Committer  # noqa: E402


class Tasks:
    failed = False

    def __init__(self):
        self.committed = {}
        self.checkpoints = 0

    def running(self):
        return []

    def pending_offsets(self):
        return {tp: o for tp, o in {("in", 0): 5}.items() if self.committed.get(tp) != o}

    def write_checkpoints(self, force=True):
        self.checkpoints += 1


class Producer:
    def flush(self, timeout):
        pass


class Consumer:
    def __init__(self, *fail):
        self.fail = list(fail)
        self.commits = []

    def commit(self, offsets, asynchronous):
        if self.fail:
            raise self.fail.pop(0)
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])
        return [kafka.TopicPartition(tp.topic, tp.partition, tp.offset) for tp in offsets]


@pytest.mark.parametrize("code", [KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION,
                                  KafkaError.REBALANCE_IN_PROGRESS, KafkaError._TRANSPORT,
                                  KafkaError.COORDINATOR_NOT_AVAILABLE])
def test_commit_while_the_group_or_broker_is_away_stays_pending(code):
    tasks, consumer = Tasks(), Consumer(KafkaException(KafkaError(code)))
    c = Committer(consumer, tasks, Producer(), Producer())
    c.commit()
    assert tasks.committed == {} and c.commits_failed == 1 and c.commits == 0
    assert tasks.checkpoints == 0
    c.commit()                                  # the next commit sends the same offsets
    assert consumer.commits == [[("in", 0, 5)]] and tasks.committed == {("in", 0): 5}
    assert c.commits == 1


def test_other_commit_failures_stop_the_commit():
    tasks = Tasks()
    consumer = Consumer(KafkaException(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED)))
    with pytest.raises(CommitError, match="committing offsets failed"):
        Committer(consumer, tasks, Producer(), Producer()).commit()
    assert tasks.committed == {}
