"""Hypothesis strategies for OTLP values: what clients send, and now and then what they
should not (duplicate keys, wrong id lengths, absurd times), for the decoder tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

RECEIVED = 1_764_000_000_000_000
NOW_NS = 1_764_000_000_000_000_000
KEYS = [
    "job.id", "job.step", "job.type", "event.name", "log.category", "log.iostream",
    "exception.type", "exception.message", "exception.stacktrace", "service.name",
    "k", "ключ", 'q"uote', "back\\slash", "ctl\x01", "",
]  # fmt: skip
TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
) | st.sampled_from(["", "a\nb", 'say "hi"', "tab\there", "\x00\x1f\x7f", "é€𝄞", "\\"])
DOUBLES = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1.0, 1e16, 1e-5, 3.2e-5, 1e-7, 0.1, 123456789.123, 5e-324]
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``bad`` one time in fifty: a request has many values, and one bad one sends all of
    it the reference way."""
    return st.integers(0, 49).flatmap(lambda i: bad if i == 0 else good)


def _scalar() -> st.SearchStrategy[AnyValue]:
    return st.one_of(
        TEXT.map(lambda s: AnyValue(string_value=s)),
        st.booleans().map(lambda b: AnyValue(bool_value=b)),
        st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
        DOUBLES.map(lambda d: AnyValue(double_value=d)),
        st.binary(max_size=7).map(lambda b: AnyValue(bytes_value=b)),
        st.just(AnyValue()),
    )


def _nested(
    children: st.SearchStrategy[AnyValue], *, unique: bool = False
) -> st.SearchStrategy[AnyValue]:
    pairs = (
        st.dictionaries(st.sampled_from(KEYS), children, max_size=3).map(lambda d: list(d.items()))
        if unique
        else st.lists(st.tuples(st.sampled_from(KEYS), children), max_size=3)
    )
    return st.one_of(
        st.lists(children, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        pairs.map(
            lambda kvs: AnyValue(
                kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs])
            )
        ),
    )


VALUES = st.recursive(_scalar(), _nested, max_leaves=6)
#: Values without duplicate keys in their maps: what SDKs send.
PLAIN_VALUES = st.recursive(_scalar(), lambda c: _nested(c, unique=True), max_leaves=6)
_STRINGS = TEXT.map(lambda s: AnyValue(string_value=s))
ATTRS = mostly(
    st.tuples(
        st.dictionaries(st.sampled_from(KEYS[:10]), _STRINGS, max_size=3),
        st.dictionaries(st.sampled_from(KEYS[10:]), PLAIN_VALUES, max_size=4),
    ).map(lambda ds: [*ds[0].items(), *ds[1].items()]),
    st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=6),  # duplicates, non-strings
).map(lambda kvs: [KeyValue(key=k, value=v) for k, v in kvs])


def ids(size: int) -> st.SearchStrategy[bytes]:
    return mostly(
        st.one_of(st.binary(min_size=size, max_size=size), st.just(b""), st.just(b"\0" * size)),
        st.binary(min_size=1, max_size=size + 2),  # wrong lengths: records to reject
    )


TIMES = mostly(
    st.one_of(
        st.just(0),
        st.integers(NOW_NS - 10**15, NOW_NS + 10**15),
        st.sampled_from([946_684_800 * 10**9, 7_258_118_400 * 10**9 - 1]),
    ),
    st.sampled_from([1, 7_258_118_400 * 10**9, 2**64 - 1]),
)
