"""The anchor digests, keys and documents (:mod:`eventkeep.store.anchors`), on hand-made rows."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from eventkeep.errors import AnchorError, ConfigurationError
from eventkeep.store.anchors import (
    LOG_GENESIS,
    AnchorHead,
    AnchorRow,
    check_anchor,
    digest_heads,
    digest_log,
    generate_ed25519_key,
    load_key,
    make_anchor,
    read_anchor,
)

SECRET = b"unit tests anchor secret, 40 bytes long."


def rows(count: int) -> list[AnchorRow]:
    return [
        AnchorRow(p, f"s{p % 3}", p // 3 + 1, hashlib.sha256(b"%d" % p).digest())
        for p in range(1, count + 1)
    ]


class Source:
    """An AnchorSource over a list of rows."""

    def __init__(self, log: list[AnchorRow]) -> None:
        self.log = log

    def head_position(self) -> int:
        return self.log[-1].position if self.log else 0

    def rows(self, after: int, upto: int):  # type: ignore[no-untyped-def]
        return iter([r for r in self.log if after < r.position <= upto])

    def heads(self, upto: int):  # type: ignore[no-untyped-def]
        last: dict[str, AnchorRow] = {}
        for r in self.log:
            if r.position <= upto:
                last[r.stream_id] = r
        return iter(AnchorHead(s, r.version, r.position, r.hash) for s, r in sorted(last.items()))


def test_the_log_digest_is_a_left_fold_so_it_can_resume_anywhere() -> None:
    log = rows(10)
    whole, count = digest_log(log)
    assert count == 10
    for cut in range(11):
        first, n = digest_log(log[:cut])
        assert n == cut
        assert digest_log(log[cut:], first) == (whole, 10 - cut)


@pytest.mark.parametrize("field", ["position", "stream_id", "version", "hash"])
def test_every_field_of_every_row_changes_the_log_digest(field: str) -> None:
    log = rows(5)
    changed = {"position": 99, "stream_id": "other", "version": 99, "hash": bytes(32)}[field]
    edited = [*log[:2], log[2]._replace(**{field: changed}), *log[3:]]
    assert digest_log(edited)[0] != digest_log(log)[0]


def test_the_order_of_rows_changes_the_log_digest() -> None:
    log = rows(4)
    assert digest_log([log[1], log[0], *log[2:]])[0] != digest_log(log)[0]


def test_an_empty_log_digests_to_the_genesis_value() -> None:
    assert digest_log([]) == (LOG_GENESIS, 0)
    assert digest_heads([])[1] == 0


def test_the_heads_digest_covers_every_head() -> None:
    heads = [AnchorHead("a", 2, 5, bytes(32)), AnchorHead("b", 1, 3, bytes(32))]
    digest, count = digest_heads(heads)
    assert count == 2
    assert digest_heads([heads[0]._replace(version=1), heads[1]])[0] != digest
    assert digest_heads(heads[:1])[0] != digest


def test_an_anchor_made_and_checked_on_the_same_rows_matches() -> None:
    key = load_key(SECRET)
    source = Source(rows(9))
    anchor = make_anchor(source, key)
    assert (anchor.position, anchor.events, anchor.streams) == (9, 9, 3)
    assert check_anchor(source, anchor, key)[1] == []
    assert check_anchor(Source(rows(12)), anchor, key)[1] == []  # later rows do not matter


def test_the_signature_covers_everything_but_itself() -> None:
    key = load_key(SECRET)
    anchor = make_anchor(Source(rows(3)), key)
    assert b'"signature":""' in anchor.signed_bytes()
    for change in (
        {"position": 4},
        {"created_at": "1999-01-01T00:00:00Z"},
        {"heads_digest": "0" * 64},
        {"streams": 2},
    ):
        forged = msgspec.structs.replace(anchor, **change)  # type: ignore[arg-type]
        with pytest.raises(AnchorError, match="bad signature"):
            check_anchor(Source(rows(3)), forged, key)


def test_a_signature_that_is_not_base64_is_an_anchor_error() -> None:
    key = load_key(SECRET)
    anchor = msgspec.structs.replace(make_anchor(Source(rows(3)), key), signature="%%%")
    with pytest.raises(AnchorError, match="not base64"):
        check_anchor(Source(rows(3)), anchor, key)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"log_digest": "xyz"}, "log_digest is not a sha256"),
        ({"heads_digest": "ab"}, "heads_digest is not a sha256"),
        ({"events": 10}, "impossible position or counts"),
        ({"position": -1}, "impossible position or counts"),
    ],
)
def test_read_anchor_refuses_impossible_values(change: dict[str, object], message: str) -> None:
    document = msgspec.json.decode(make_anchor(Source(rows(3)), load_key(SECRET)).to_json())
    document.update(change)
    with pytest.raises(AnchorError, match=message):
        read_anchor(msgspec.json.encode(document))


def test_keys_have_stable_ids_and_kinds() -> None:
    private, public = generate_ed25519_key()
    signing, checking = load_key(private), load_key(public.decode())
    assert (signing.algorithm, signing.can_sign) == ("ed25519", True)
    assert (checking.algorithm, checking.can_sign) == ("ed25519", False)
    assert signing.key_id == checking.key_id
    assert load_key(SECRET).key_id == load_key(SECRET + b"\n").key_id
    assert load_key(SECRET).key_id != load_key(SECRET[::-1]).key_id
    assert load_key(SECRET).key_id not in SECRET.hex()


def test_a_pem_key_that_is_not_ed25519_is_refused() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigurationError, match="must be Ed25519"):
        load_key(pem)
    with pytest.raises(ConfigurationError, match="not a usable PEM key"):
        load_key(b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
