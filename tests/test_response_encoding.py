"""GraphQL responses over HTTP are encoded by orjson (schema.http.encode_body), and what orjson
refuses is still written, by the standard library."""

import json

from schema.http import encode_body


def test_a_response_is_the_same_json_in_fewer_bytes():
    data = {"data": {"posts": {"nodes": [{"id": "post_1", "text": "é ✓ 😀", "n": 3, "x": 1.5, "ok": True, "none": None}]}}}
    encoded = encode_body(data)
    assert isinstance(encoded, bytes)
    assert json.loads(encoded) == data
    assert encoded == json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def test_what_orjson_refuses_is_written_by_json():
    huge = {"data": {"value": {"big": 2**70, 3: "a key that is not a string"}}}
    assert json.loads(encode_body(huge)) == {"data": {"value": {"big": 2**70, "3": "a key that is not a string"}}}
