"""The soarkafka XSOAR integration, run as XSOAR runs it (xsoar_harness),
against a real soarkafka server and its development broker.

Environment: SOARKAFKA_URL, SOARKAFKA_TOKEN, SOARKAFKA_BROKER (the dev
broker's host:port) and SOARKAFKA_XSOAR_SCRIPT (the script extracted from
the built unified YAML). integrations/xsoar_test.go sets them.
"""

import json
import os
import time
import unittest
import uuid

import requests

import demistomock
from xsoar_harness import Instance, context_value

URL = os.environ.get("SOARKAFKA_URL", "")
TOKEN = os.environ.get("SOARKAFKA_TOKEN", "")
BROKER = os.environ.get("SOARKAFKA_BROKER", "")


EMPTY_CONTAINER_PARSER = """package parser

import "github.com/soarkafka/soarkafka/soar"

func ParseMessages(topic string, messages []soar.Message) ([]soar.Result, error) {
	var out []soar.Result
	for _, m := range messages {
		out = append(out, soar.Result{Container: soar.Container{
			Name:                 "message " + m.SourceID(),
			Severity:             "critical",
			SourceDataIdentifier: topic + ":" + m.SourceID(),
		}})
	}
	return out, nil
}
"""


def api(method, path, body=None):
    r = requests.request(method, URL + path, json=body, headers={"ph-auth-token": TOKEN}, timeout=60)
    if r.status_code >= 400:
        raise AssertionError("{} {}: {} {}".format(method, path, r.status_code, r.text))
    return r.json() if r.text else None


def new_asset(**config):
    """A stored asset on a topic of its own, read from the beginning."""
    name = "xsoar-" + uuid.uuid4().hex[:8]
    cfg = {"hosts": BROKER, "topic": name, "read_from_beginning": True}
    cfg.update(config)
    api("POST", "/v1/assets", {"name": name, "config": cfg})
    return name


def instance(asset, **params):
    p = {"url": URL, "api_token": {"identifier": "", "password": TOKEN}, "asset": asset,
         "isFetch": True, "max_fetch": "50", "first_fetch": "beginning", "incident_per": "artifact",
         "poll_on_fetch": True}
    p.update(params)
    return Instance(p)


def post(inst, values):
    """Posts each value as its own message through the integration's
    soarkafka-post-data, and returns the offsets Kafka gave them."""
    r = inst.run("soarkafka-post-data", {"data": json.dumps(values), "data_type": "JSON", "json_format": "compact"})
    assert r.ok, (r.error, r.results)
    out = context_value(r, "SoarKafka.PostData")
    return [d["offset"] for d in out["data"]]


def fetch(inst):
    r = inst.run("fetch-incidents")
    assert r.ok, "fetch failed: {} {}".format(r.error, r.logs)
    assert r.incidents is not None, "fetch did not call demisto.incidents"
    return r.incidents


class FetchTest(unittest.TestCase):
    def test_fetch_twice_with_new_messages_between(self):
        asset = new_asset()
        inst = instance(asset)
        first = post(inst, [{"n": i, "host": "h{}".format(i)} for i in range(3)])
        self.assertEqual(first, [0, 1, 2])
        one = fetch(inst)
        self.assertEqual(len(one), 3, one)
        self.assertEqual(set(inst.last_run), {"asset", "cursor"})
        cursor_after_one = inst.last_run["cursor"]

        post(inst, [{"n": i} for i in range(3, 5)])
        two = fetch(inst)
        self.assertEqual(len(two), 2, two)
        self.assertNotEqual(inst.last_run["cursor"], cursor_after_one)
        self.assertEqual(fetch(inst), [], "a third fetch with nothing new made incidents")

        every = one + two
        raws = [json.loads(i["rawJSON"]) for i in every]
        # None twice, none missed: the five offsets, each once.
        self.assertEqual(sorted(r["Offset"] for r in raws), [0, 1, 2, 3, 4])
        self.assertEqual(len({i["dbotMirrorId"] for i in every}), 5)
        for inc, raw in zip(every, raws):
            self.assertEqual(raw["Topic"], asset)
            self.assertEqual(raw["Partition"], 0)
            self.assertEqual(json.loads(raw["Message"])["n"], raw["Offset"])
            self.assertEqual(inc["details"], raw["Message"])
            self.assertEqual(raw["Artifact"]["source_data_identifier"], "0:{}".format(raw["Offset"]))
            self.assertEqual(inc["dbotMirrorId"], str(raw["Artifact"]["id"]))
            self.assertEqual(raw["Container"]["kafka_asset"], asset)
            self.assertNotIn("artifacts", raw["Container"])
            self.assertEqual(inc["name"], raw["Message"])  # the default parser names an artifact after its message
            self.assertEqual(inc["severity"], 0)  # the default parser sets none
            self.assertTrue(inc["occurred"].endswith("Z"), inc["occurred"])

    def test_backlog_drains_over_bounded_fetches(self):
        asset = new_asset()
        inst = instance(asset, max_fetch="2")
        post(inst, [{"n": i} for i in range(5)])
        sizes, offsets = [], []
        for _ in range(4):
            incs = fetch(inst)
            sizes.append(len(incs))
            offsets += [json.loads(i["rawJSON"])["Offset"] for i in incs]
        self.assertEqual(sizes, [2, 2, 1, 0])
        self.assertEqual(offsets, [0, 1, 2, 3, 4])

    def test_first_fetch_now_starts_at_the_end(self):
        asset = new_asset()
        inst = instance(asset, first_fetch="now")
        post(inst, [{"old": i} for i in range(2)])
        self.assertEqual(fetch(inst), [], "first fetch 'now' brought what was there before")
        post(inst, [{"new": 1}])
        incs = fetch(inst)
        self.assertEqual([json.loads(json.loads(i["rawJSON"])["Message"]) for i in incs], [{"new": 1}])

    def test_one_incident_per_container(self):
        asset = new_asset()
        inst = instance(asset, incident_per="container")
        post(inst, [{"n": i} for i in range(3)])
        incs = fetch(inst)
        self.assertEqual(len(incs), 1, incs)
        raw = json.loads(incs[0]["rawJSON"])
        self.assertEqual([m["Offset"] for m in raw["Messages"]], [0, 1, 2])
        self.assertEqual(len(raw["Container"]["artifacts"]), 3)
        self.assertEqual(incs[0]["name"], raw["Container"]["name"])
        self.assertEqual(incs[0]["dbotMirrorId"], str(raw["Container"]["id"]))
        post(inst, [{"n": 3}])
        again = fetch(inst)
        self.assertEqual(len(again), 1)
        self.assertEqual([m["Offset"] for m in json.loads(again[0]["rawJSON"])["Messages"]], [3])

    def test_occurred_from_the_ndjson_event_time(self):
        # A parser that sets severity and start_time: the NDJSON one sets
        # cef.rt from _time, which is the event time occurred takes.
        asset = new_asset(message_parser="ndjson")
        inst = instance(asset)
        post(inst, [{"_time": "1767225600.5", "_raw": "event one", "host": "web1"}])
        incs = fetch(inst)
        self.assertEqual(len(incs), 1, incs)
        self.assertEqual(incs[0]["occurred"], "2026-01-01T00:00:00.500000Z")
        self.assertEqual(incs[0]["details"], "event one")

    def test_a_fetch_that_dies_before_its_last_run_loses_nothing(self):
        asset = new_asset()
        inst = instance(asset)
        post(inst, [{"n": 0}, {"n": 1}])

        def killed(obj):
            raise RuntimeError("killed before setLastRun")

        saved = demistomock.setLastRun
        demistomock.setLastRun = killed
        try:
            r = inst.run("fetch-incidents")
        finally:
            demistomock.setLastRun = saved
        self.assertFalse(r.ok)
        self.assertEqual(len(r.incidents), 2)
        self.assertEqual(inst.last_run, {})
        # The cursor did not move: the next run fetches them again (XSOAR
        # may then hold them twice, but none is lost).
        again = fetch(inst)
        self.assertEqual([i["dbotMirrorId"] for i in again], [i["dbotMirrorId"] for i in r.incidents])
        self.assertEqual(fetch(inst), [])

    def test_a_container_without_artifacts_is_an_incident(self):
        # A parser that makes a container per message and no artifact: in
        # per-artifact mode the container still reaches XSOAR, once.
        parser = "xs-empty-" + uuid.uuid4().hex[:6]
        api("POST", "/v1/parsers", {"name": parser, "source": EMPTY_CONTAINER_PARSER})
        asset = new_asset(message_parser=parser)
        inst = instance(asset)
        post(inst, [{"n": 0}, {"n": 1}])
        incs = fetch(inst)
        self.assertEqual(sorted(i["name"] for i in incs), ["message 0:0", "message 0:1"])
        self.assertEqual(sorted(i["severity"] for i in incs), [4, 4])  # critical
        raws = [json.loads(i["rawJSON"]) for i in incs]
        self.assertEqual([r["Messages"] for r in raws], [[], []])
        self.assertEqual(fetch(inst), [])

    def test_a_container_with_more_artifacts_than_a_page_is_one_incident(self):
        # 600 artifacts in one container come in two pages (500 each at
        # most): per container, one incident with all of them.
        asset = new_asset()
        inst = instance(asset, incident_per="container")
        post(inst, [{"n": i} for i in range(600)])
        incs = fetch(inst)
        self.assertEqual(len(incs), 1)
        raw = json.loads(incs[0]["rawJSON"])
        self.assertEqual([m["Offset"] for m in raw["Messages"]], list(range(600)))
        self.assertEqual(fetch(inst), [])

    def test_severity_mapped_from_soar_names(self):
        # The OCSF parser sets SOAR severities (severity_id 4 is high, 3
        # medium) and start_time from the event's time.
        asset = new_asset(message_parser="ocsf")
        inst = instance(asset)
        post(inst, [
            {"class_uid": 2004, "activity_id": 1, "severity_id": 4, "time": 1767225600000, "finding_info": {"title": "bad thing"}},
            {"class_uid": 2004, "activity_id": 1, "severity_id": 3, "time": 1767225601000, "message": "odd thing"},
        ])
        incs = fetch(inst)
        got = [(i["name"], i["severity"], i["occurred"]) for i in incs]
        self.assertEqual(got, [("bad thing", 3, "2026-01-01T00:00:00.000000Z"),
                               ("odd thing", 2, "2026-01-01T00:00:01.000000Z")])
        self.assertEqual([json.loads(i["rawJSON"])["Offset"] for i in incs], [0, 1])

        per_container = instance(asset, incident_per="container")
        incs = fetch(per_container)
        self.assertEqual(len(incs), 1, incs)
        self.assertEqual((incs[0]["severity"], incs[0]["occurred"]), (3, "2026-01-01T00:00:00.000000Z"))

    def test_bad_token_fetches_nothing(self):
        asset = new_asset()
        good = instance(asset)
        post(good, [{"n": 0}])
        bad = instance(asset, api_token={"identifier": "", "password": "not-the-token-0123456789"})
        r = bad.run("fetch-incidents")
        self.assertFalse(r.ok)
        self.assertIsNone(r.incidents)
        self.assertEqual(bad.last_run, {})
        self.assertIn("refused the API token (HTTP 401", str(r.error))
        self.assertIn("API token parameter", str(r.error))
        # The message is still there for the right token.
        self.assertEqual(len(fetch(good)), 1)

        t = bad.run("test-module")
        self.assertFalse(t.ok)
        self.assertIn("refused the API token", t.error_entries[0]["Contents"])

    def test_a_failed_poll_fails_the_fetch(self):
        asset = new_asset(hosts="127.0.0.1:1", timeout=1000)
        inst = instance(asset)
        r = inst.run("fetch-incidents")
        self.assertFalse(r.ok)
        self.assertIsNone(r.incidents)
        self.assertEqual(inst.last_run, {})
        self.assertIn("on_poll failed", str(r.error))

    def test_without_poll_on_fetch_soarkafka_polls(self):
        asset = new_asset()
        inst = instance(asset, poll_on_fetch=False)
        post(inst, [{"n": 0}, {"n": 1}])
        self.assertEqual(fetch(inst), [], "fetched without a poll")
        self.assertTrue(inst.run("soarkafka-poll").ok)
        self.assertEqual(len(fetch(inst)), 2)

    def test_unknown_asset_is_named(self):
        r = instance("no-such-asset-" + uuid.uuid4().hex[:6]).run("fetch-incidents")
        self.assertFalse(r.ok)
        self.assertIn("HTTP 404", str(r.error))
        self.assertIn("no-such-asset", str(r.error))


class CommandsTest(unittest.TestCase):
    def test_test_module(self):
        asset = new_asset()
        inst = instance(asset)
        r = inst.run("test-module")
        # Test connectivity names the missing topic.
        self.assertFalse(r.ok)
        self.assertIn('topic "{}" does not exist'.format(asset), r.error_entries[0]["Contents"])
        post(inst, [{"n": 0}])
        r = inst.run("test-module")
        self.assertTrue(r.ok, (r.error, r.results))
        self.assertEqual(r.results[0]["Contents"], "ok")

    def test_post_data_with_key_headers_partition(self):
        asset = new_asset()
        inst = instance(asset)
        r = inst.run("soarkafka-post-data", {"data": "plain text", "data_type": "string", "key": "k1",
                                              "headers": '{"source": "xsoar"}', "partition": "0", "timeout": "10"})
        self.assertTrue(r.ok, (r.error, r.results))
        out = context_value(r, "SoarKafka.PostData")
        self.assertEqual(out["status"], "success")
        self.assertEqual(out["topic"], asset)
        d = out["data"][0]
        self.assertEqual((d["partition"], d["offset"], d["topic_partition"]), (0, 0, asset + "-0"))
        self.assertEqual(d["serialized_key_size"], 2)
        # Read it back through soarkafka: poll now shows the stored message.
        p = inst.run("soarkafka-poll", {"poll_now": "true", "artifact_count": "1"})
        self.assertTrue(p.ok, (p.error, p.results))
        cid = context_value(p, "SoarKafka.Poll")["data"][0]["id"]
        c = api("GET", "/v1/containers/{}".format(cid))
        self.assertEqual(c["artifacts"][0]["cef"]["message"], "plain text")

    def test_post_data_bad_headers(self):
        r = instance(new_asset()).run("soarkafka-post-data", {"data": "x", "data_type": "string", "headers": "{nope"})
        self.assertFalse(r.ok)
        self.assertIn("headers is not JSON", r.error_entries[0]["Contents"])

    def test_post_data_failure_is_an_error(self):
        r = instance(new_asset()).run("soarkafka-post-data", {"data": "[]", "data_type": "JSON"})
        self.assertFalse(r.ok)
        self.assertIn("post_data failed", r.error_entries[0]["Contents"])

    def test_poll_and_ingest_status(self):
        asset = new_asset()
        inst = instance(asset, insecure=True)  # no certificate to check over http; the setting is accepted
        post(inst, [{"n": i} for i in range(4)])
        p = inst.run("soarkafka-poll")
        self.assertTrue(p.ok, (p.error, p.results))
        out = context_value(p, "SoarKafka.Poll")
        self.assertEqual(out["asset"], asset)
        self.assertEqual(out["summary"]["messages_read"], 4)
        self.assertEqual(out["summary"]["artifacts_created"], 4)
        self.assertEqual(out["data"][0]["artifact_count"], 4)

        s = inst.run("soarkafka-ingest-status")
        self.assertTrue(s.ok, (s.error, s.results))
        st = context_value(s, "SoarKafka.IngestStatus")
        self.assertEqual((st["asset"], st["topic"], st["lag"]), (asset, asset, 0))
        self.assertEqual(st["partitions"][0]["stored_offset"], 4)
        self.assertEqual(st["last_poll"]["messages_read"], 4)

    def test_list_topics(self):
        asset = new_asset()
        inst = instance(asset)
        post(inst, [{"n": i} for i in range(3)])
        r = inst.run("soarkafka-list-topics", {"topic": asset})
        self.assertTrue(r.ok, (r.error, r.results))
        topics = context_value(r, "SoarKafka.Topic")
        self.assertEqual([t["topic"] for t in topics], [asset])
        part = topics[0]["partitions"][0]
        self.assertEqual((part["partition"], part["earliest_offset"], part["latest_offset"]), (0, 0, 3))
        every = context_value(inst.run("soarkafka-list-topics"), "SoarKafka.Topic")
        self.assertIn(asset, [t["topic"] for t in every])

    def test_unknown_command(self):
        r = instance(new_asset()).run("soarkafka-nope")
        self.assertFalse(r.ok)
        self.assertIn("soarkafka-nope is not implemented", r.error_entries[0]["Contents"])


if __name__ == "__main__":
    unittest.main()
