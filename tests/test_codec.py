"""The codec's fast paths give exactly what json_format gives."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from claudebench.api.codec import compact_json, struct_to_fields, value_to_json

scalars = st.one_of(
    st.booleans().map(lambda b: struct_pb2.Value(bool_value=b)),
    st.floats().map(lambda f: struct_pb2.Value(number_value=f)),
    st.text().map(lambda s: struct_pb2.Value(string_value=s)),
    st.just(struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)),
)


@given(scalars)
def test_value_to_json_matches_json_format(value: struct_pb2.Value) -> None:
    try:
        expected = compact_json(json_format.MessageToDict(value))
    except ValueError:  # json_format refuses NaN and infinities: so must we
        with pytest.raises(ValueError, match="Fail to serialize"):
            value_to_json(value)
        return
    assert value_to_json(value) == expected


def test_an_unset_value_is_null() -> None:
    assert value_to_json(struct_pb2.Value()) == "null"


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_struct_to_fields_matches_json_format(fields: dict[str, Any]) -> None:
    struct = struct_pb2.Struct()
    struct.update(fields)
    expected = {key: compact_json(value) for key, value in json_format.MessageToDict(struct).items()}
    assert struct_to_fields(struct) == expected
