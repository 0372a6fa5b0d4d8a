"""No user-chosen id can address another record's key (issue 15, finding 7)."""

from __future__ import annotations

import itertools

import grpc

from claudebench.keys import Keyspace, key_id
from claudebench.v1 import system_pb2 as pb
from claudebench.v1 import system_pb2_grpc

# Ids that try to reach other keys: suffixes of other records, separators, hash tags, the escape.
TRICKY = ["b", "b:lock", "d", "d:votes", "x:y", "x%3Ay", "x%", "{x}", "w:Bash", "w", "Bash", "a:b:c"]


def every_key(keys: Keyspace, value: str) -> dict[str, str]:
    """Every key an id can reach, by the record kind it is meant for."""
    return {
        "task": keys.task(value),
        "held": keys.held(value),
        "instance": keys.instance(value),
        "batch": keys.batch(value),
        "batch_lock": keys.batch_lock(value),
        "quorum": keys.quorum(value),
        "quorum_votes": keys.quorum_votes(value),
        "lease": keys.lease(value),
        "schedule": keys.schedule(value),
        "hook_circuit": keys.hook_circuit(value),
        "hook_config": keys.hook_config(value),
        "hook_stats": keys.hook_stats(value),
        "hook_errors": keys.hook_errors(value),
        "hook_log": keys.hook_log(value),
        "hook_rate": keys.hook_rate(value, 7),
        "hook_rate_tool": keys.hook_rate(value, 7, "Bash"),
        "hook_rate_of_w": keys.hook_rate("w", 7, value),
    }


def test_distinct_records_never_share_a_key() -> None:
    for keys in (Keyspace(), Keyspace.of("cb", "ns")):
        owners: dict[str, tuple[str, str]] = {}
        for value in TRICKY:
            for kind, key in every_key(keys, value).items():
                owner = (kind, value)
                if kind == "hook_rate_of_w":
                    owner = ("hook_rate_tool", f"w/{value}")
                if kind == "hook_rate_tool":
                    owner = ("hook_rate_tool", f"{value}/Bash")
                assert owners.setdefault(key, owner) == owner, (key, owners[key], owner)


def test_plain_ids_keep_their_keys_and_encoding_is_reversible() -> None:
    assert Keyspace().task("t-1.a_b@c") == "cb:task:t-1.a_b@c"
    for a, b in itertools.combinations(TRICKY, 2):
        assert key_id(a) != key_id(b)
    assert ":" not in "".join(key_id(v) for v in TRICKY)
    assert "{" not in key_id("{x}")  # no hash tag from an id


async def test_batch_b_lock_and_decision_d_votes_are_records_of_their_own(
    channel: grpc.aio.Channel,
) -> None:
    system = system_pb2_grpc.SystemServiceStub(channel)
    for name in ("a", "b"):
        await system.Register(pb.RegisterRequest(instance_id=name, roles=["claimer"]))
    # Finishing batch "b:lock" used to leave a hash where batch b's lock is: b then failed.
    done = pb.CoordinateBatchRequest(batch_id="b:lock", instance_id="a", total_items=1, processed_items=1)
    done.done = True
    await system.CoordinateBatch(done)
    batch = await system.CoordinateBatch(
        pb.CoordinateBatchRequest(batch_id="b", instance_id="b", total_items=3, processed_items=1)
    )
    assert (batch.acquired, batch.processor_id, batch.total_items) == (True, "b", 3)

    # Voting on "d:votes" used to write into decision d's votes (and read them as its result).
    await system.QuorumVote(pb.QuorumVoteRequest(decision_id="d", instance_id="a", value="go"))
    other = await system.QuorumVote(
        pb.QuorumVoteRequest(decision_id="d:votes", instance_id="b", value="stop", total_instances=3)
    )
    assert (other.vote_count, other.quorum_reached) == (1, False)
    d = await system.QuorumVote(pb.QuorumVoteRequest(decision_id="d", instance_id="b", value="go"))
    assert (d.vote_count, d.agreeing_votes, d.final_decision) == (2, 2, "go")
