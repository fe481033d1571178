"""nsq-to-nsq next to Go's nsq_to_nsq: the same flags, on two channels of the same topic, relay
the same messages, filtered and whitelisted alike."""

from __future__ import annotations

import json

import pytest

from interop_helpers import start, stop
from polling import tool, wait_for
from relay_helpers import collected, fill, received, source_settled, watch

pytestmark = pytest.mark.real_only("Go's nsq_to_nsq runs next to the real nsqd binary")

DOCUMENTS = [
    b'{"kind":"click","user":"ann","n":1,"drop":true}',
    b'{"kind":"click","user":"b\\u00f6b","n":2.0,"x":{"b":1,"a":[1,2]}}',
    b'{"kind":"click","user":"<tag> & co","n":1.5e2}',             # Go escapes <, > and &
    b'{"kind":"view","user":"cat","n":3}',
    b'{"kind":7,"user":"dan"}',
    b'{"kind":"click"}',
    b'{"kind":"click","kind":"view","user":"eve"}',                  # the last one counts
    b'["kind","click"]',
    b'not json at all',
]
FILTERS = ["--require-json-field", "kind", "--require-json-value", "click",
           "--whitelist-json-field", "user", "--whitelist-json-field", "n"]


@pytest.mark.parametrize("filters", [FILTERS, FILTERS[:2], ["--whitelist-json-field", "user"]],
                         ids=["value+whitelist", "field", "whitelist"])
def test_the_same_messages_pass_as_through_gos_nsq_to_nsq(nsqd_factory, go_app, filters):
    nsq_to_nsq = go_app("nsq_to_nsq")
    source, destination = nsqd_factory(), nsqd_factory()
    source.create_topic("events")
    source.create_channel("events", "go")
    fill(source, "events", DOCUMENTS, channel="ours")
    for topic in ("from_go", "from_ours"):
        watch(destination, topic)
    relays = [
        start([nsq_to_nsq, "--topic", "events", "--channel", "go", "--destination-topic",
               "from_go", *filters, "--nsqd-tcp-address", source.tcp_address,
               "--destination-nsqd-tcp-address", destination.tcp_address]),
        start([tool("nsq-to-nsq"), "--topic", "events", "--channel", "ours",
               "--destination-topic", "from_ours", *filters, "--nsqd-tcp-address",
               source.tcp_address, "--destination-nsqd-tcp-address", destination.tcp_address]),
    ]
    try:
        go_done = source_settled(source, "events", "go")
        ours_done = source_settled(source, "events", "ours")
        assert wait_for(lambda: go_done() and ours_done(), timeout=60), [
            source.channel_stats("events", c) for c in ("go", "ours")]
    finally:
        for relay in relays:
            stop(relay)
    go, ours = collected(destination, "from_go"), collected(destination, "from_ours")
    assert received(destination, "from_ours") == received(destination, "from_go") > 0
    if "--whitelist-json-field" in filters:  # re-marshalled: the same JSON, if not the same bytes
        assert sorted(map(json.loads, ours), key=repr) == sorted(map(json.loads, go), key=repr)
    else:  # passed through: byte for byte
        assert sorted(ours) == sorted(go)
