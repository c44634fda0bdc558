"""soarkafka for Cortex XSOAR.

Fetches the containers and artifacts a soarkafka server stored from a Kafka
topic as incidents, and runs soarkafka's actions (post data, on poll, ingest
status, list topics) as commands. Everything Kafka (brokers, security,
parsers, positions) lives in soarkafka; this script only speaks its REST API.

Python 3.9 to 3.13 with the standard library and requests: what XSOAR's
python3 images ship.
"""

import demistomock as demisto
from CommonServerPython import *

import json
import re
from datetime import datetime, timezone
from urllib.parse import quote

import requests

INTEGRATION = "soarkafka"

# XSOAR's incident severities: 0 unknown, 0.5 informational, 1 low,
# 2 medium, 3 high, 4 critical. SOAR names its severities; a name XSOAR
# has no level for is unknown.
SEVERITIES = {
    "informational": 0.5,
    "info": 0.5,
    "low": 1,
    "medium": 2,
    "high": 3,
    "critical": 4,
}

# The bounds of GET /v1/pull (max_containers is the tighter one).
MAX_FETCH_LIMIT = 1000
# Artifacts asked for with each container in per-container mode: the
# server's default page. A container with more comes back in the next
# answer carrying the rest, and is merged when it is in the same fetch.
CONTAINER_MODE_ARTIFACTS = 500
# Pages one fetch reads at most, so that a run ends well within XSOAR's
# fetch time limit whatever the backlog; the cursor keeps the rest.
MAX_PAGES = 50

# source_data_identifier of an artifact from a bundled parser:
# "<partition>:<offset>", or "<partition>:<offset>:<n>" for the n-th event
# of an NDJSON message.
KAFKA_SOURCE_ID = re.compile(r"^(\d+):(\d+)(?::\d+)?$")


class Client:
    """The soarkafka REST API, with the API token in ph-auth-token."""

    def __init__(self, base_url, token, verify=True, proxy=False, timeout=120):
        if not base_url:
            raise DemistoException("Server URL is empty: give soarkafka's base URL, e.g. https://soarkafka.example.com:8080")
        if not token:
            raise DemistoException("API token is empty: give the soarkafka server's api_token")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        # Without "Use system proxy settings" the environment's proxies are
        # ignored, as XSOAR's own integrations do.
        self.session.trust_env = bool(proxy)
        self.session.verify = verify
        if not verify:
            # Chosen by the administrator: no warning per request in the logs.
            requests.packages.urllib3.disable_warnings(requests.packages.urllib3.exceptions.InsecureRequestWarning)
        self.session.headers.update({"ph-auth-token": token, "Accept": "application/json"})

    def request(self, method, path, params=None, body=None, timeout=None):
        url = self.base_url + path
        timeout = timeout or self.timeout
        try:
            resp = self.session.request(method, url, params=params, json=body, timeout=timeout)
        except requests.exceptions.SSLError as e:
            raise DemistoException(
                "cannot verify soarkafka's certificate at {}: {} (give the server a certificate XSOAR trusts, "
                "or check 'Trust any certificate' for a test server)".format(self.base_url, e))
        except requests.exceptions.ConnectionError as e:
            raise DemistoException("cannot reach soarkafka at {}: {} (check the Server URL)".format(self.base_url, e))
        except requests.exceptions.Timeout:
            raise DemistoException("soarkafka at {} did not answer {} {} within {} s".format(
                self.base_url, method, path, timeout))
        if resp.status_code == 401:
            raise DemistoException(
                "soarkafka refused the API token (HTTP 401 on {} {}): {}. Set the API token parameter to the "
                "server's api_token (SOARKAFKA_API_TOKEN, or the file <data_dir>/api-token)".format(
                    method, path, error_text(resp)))
        if resp.status_code >= 400:
            raise DemistoException("soarkafka answered HTTP {} to {} {}: {}".format(
                resp.status_code, method, path, error_text(resp)))
        try:
            return resp.json()
        except ValueError:
            raise DemistoException("soarkafka answered {} {} with a body that is not JSON (is {} a soarkafka server?)".format(
                method, path, self.base_url))

    def get_asset(self, asset):
        return self.request("GET", "/v1/assets/" + quote(asset, safe=""))

    def ingest_status(self, asset):
        return self.request("GET", "/v1/assets/" + quote(asset, safe="") + "/ingest")

    def run_action(self, identifier, asset, parameters, timeout=None):
        return self.request("POST", "/v1/actions/" + identifier, body={"asset": asset, "parameters": parameters},
                            timeout=timeout)

    def pull(self, asset, cursor, max_artifacts, max_containers):
        params = {"asset": asset, "max_artifacts": max_artifacts, "max_containers": max_containers}
        if cursor:
            params["cursor"] = cursor
        return self.request("GET", "/v1/pull", params=params)

    def topics(self, asset, topic=None):
        params = {"asset": asset}
        if topic:
            params["topic"] = topic
        return self.request("GET", "/v1/topics", params=params)


def error_text(resp):
    """The message of soarkafka's error body, with every bad field."""
    try:
        err = resp.json().get("error") or {}
    except (ValueError, AttributeError):
        return resp.text[:500] or resp.reason
    msg = err.get("message") or resp.reason
    fields = err.get("fields") or []
    if fields:
        msg += " (" + "; ".join("{}: {}".format(f.get("field"), f.get("message")) for f in fields) + ")"
    return msg


def action_ok(result):
    """The ActionResult of a single parameter set, or an error with its message."""
    if isinstance(result, dict) and "results" in result and "status" not in result:
        results = result.get("results") or []
        result = results[0] if results else {}
    if result.get("status") != "success":
        raise DemistoException("soarkafka's {} failed: {}".format(result.get("identifier", "action"), result.get("message")))
    return result


def asset_is_scheduled(asset_doc):
    """Whether soarkafka's own scheduler polls the asset."""
    ingest = (asset_doc.get("config") or {}).get("ingest") or {}
    enabled = ingest.get("enabled")
    return bool(ingest.get("interval")) and (enabled is None or enabled is True)


def to_iso(value):
    """value (RFC 3339 text, or epoch milliseconds) as XSOAR's occurred
    (ISO 8601 UTC), or None when it is neither."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            t = datetime.fromtimestamp(value / 1000.0, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit():
        return to_iso(int(text))
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    # fromisoformat before 3.11 takes only 3 or 6 fraction digits.
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", text)
    if m and m.group(2):
        text = m.group(1) + (m.group(2) + "000000")[:7] + m.group(3)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def severity(*names):
    """The XSOAR severity of the first SOAR severity name given."""
    for name in names:
        if isinstance(name, str) and name.strip():
            return SEVERITIES.get(name.strip().lower(), 0)
    return 0


def kafka_coordinates(artifact):
    """(partition, offset) from a bundled parser's source_data_identifier,
    (None, None) when the parser chose another form."""
    m = KAFKA_SOURCE_ID.match(str(artifact.get("source_data_identifier") or ""))
    if not m:
        return None, None
    return int(m.group(1)), int(m.group(2))


def message_text(artifact):
    """The Kafka message as the parser kept it: cef.message (the default
    parser's), else the artifact's cef or data as JSON."""
    cef = artifact.get("cef") or {}
    if isinstance(cef, dict) and isinstance(cef.get("message"), str):
        return cef["message"]
    return json.dumps(cef or artifact.get("data") or {}, sort_keys=True)


def artifact_occurred(artifact):
    """When the event happened: the artifact's start_time, else cef.rt
    (epoch ms, the NDJSON parser's event time), else when soarkafka stored
    it."""
    cef = artifact.get("cef") or {}
    rt = cef.get("rt") if isinstance(cef, dict) else None
    return to_iso(artifact.get("start_time")) or to_iso(rt) or to_iso(artifact.get("create_time"))


def one_line(text):
    """An incident name on one line: a parser may name an artifact after a
    pretty-printed message."""
    return " ".join(str(text).split())


def without_artifacts(container):
    return {k: v for k, v in container.items() if k != "artifacts"}


def artifact_incident(asset, topic, container, artifact):
    partition, offset = kafka_coordinates(artifact)
    message = message_text(artifact)
    raw = {
        # KafkaV3's keys, so mappers written for it find the message.
        "Topic": topic,
        "Partition": partition,
        "Offset": offset,
        "Message": message,
        "Asset": asset,
        "Artifact": artifact,
        "Container": without_artifacts(container),
    }
    name = artifact.get("name")
    if not name:
        if partition is not None:
            name = "Kafka {} partition:{} offset:{}".format(topic, partition, offset)
        else:
            name = "Kafka {} artifact {}".format(topic, artifact.get("id"))
    return {
        "name": one_line(name),
        "occurred": artifact_occurred(artifact),
        "severity": severity(artifact.get("severity"), container.get("severity")),
        "details": message,
        "rawJSON": json.dumps(raw),
        "dbotMirrorId": str(artifact.get("id")),
    }


def container_incident(asset, topic, container):
    artifacts = container.get("artifacts") or []
    messages = []
    for a in artifacts:
        partition, offset = kafka_coordinates(a)
        messages.append({"Partition": partition, "Offset": offset, "Message": message_text(a)})
    first = messages[0] if messages else {"Partition": None, "Offset": None, "Message": None}
    raw = {
        "Topic": topic,
        "Partition": first["Partition"],
        "Offset": first["Offset"],
        "Message": first["Message"],
        "Messages": messages,
        "Asset": asset,
        "Container": container,
    }
    occurred = to_iso(container.get("start_time"))
    if not occurred:
        times = sorted(t for t in (artifact_occurred(a) for a in artifacts) if t)
        occurred = times[0] if times else to_iso(container.get("create_time"))
    return {
        "name": one_line(container.get("name") or "soarkafka container {}".format(container.get("id"))),
        "occurred": occurred,
        "severity": severity(container.get("severity")),
        "details": container.get("description") or "",
        "rawJSON": json.dumps(raw),
        "dbotMirrorId": str(container.get("id")),
    }


def max_fetch_param(params):
    value = arg_to_number(params.get("max_fetch") or 50, arg_name="max_fetch")
    if value is None or value < 1 or value > MAX_FETCH_LIMIT:
        raise DemistoException("Maximum number of incidents per fetch (max_fetch) is {}: give 1 to {}".format(
            params.get("max_fetch"), MAX_FETCH_LIMIT))
    return value


def fetch_incidents(client, params, last_run):
    """One fetch run: pull from the stored cursor, make the incidents, and
    return them with the last run to store. Nothing is stored here: the
    caller hands the incidents to XSOAR first, then the cursor, so a run
    that fails before the end fetches the same items again next time."""
    asset = params.get("asset") or ""
    per = (params.get("incident_per") or "artifact").lower()
    if per not in ("artifact", "container"):
        raise DemistoException("One incident per (incident_per) is {!r}: choose artifact or container".format(per))
    max_fetch = max_fetch_param(params)

    cursor = last_run.get("cursor") if last_run.get("asset") == asset else None
    if cursor is None:
        first = (params.get("first_fetch") or "beginning").lower()
        if first not in ("beginning", "now"):
            raise DemistoException("First fetch (first_fetch) is {!r}: choose beginning or now".format(first))
        # "end" answers no items, only the cursor at the current end.
        cursor = "end" if first == "now" else ""

    asset_doc = client.get_asset(asset)
    topic = (asset_doc.get("config") or {}).get("topic")
    if param_bool(params, "poll_on_fetch", True) and not asset_is_scheduled(asset_doc):
        action_ok(client.run_action("on_poll", asset, {}))

    incidents = []
    by_container = {}
    for _ in range(MAX_PAGES):
        remaining = max_fetch - len(incidents)
        if per == "artifact":
            page = client.pull(asset, cursor, remaining, remaining)
        else:
            page = client.pull(asset, cursor, CONTAINER_MODE_ARTIFACTS, remaining)
        for c in page.get("containers") or []:
            artifacts = c.get("artifacts") or []
            if per == "container":
                seen = by_container.get(c.get("id"))
                if seen is not None:
                    # The same container in a later page of this run: its
                    # next artifacts, made into one incident with the first.
                    seen.setdefault("artifacts", []).extend(artifacts)
                    continue
                by_container[c.get("id")] = c
                incidents.append(c)
            elif artifacts:
                incidents.extend(artifact_incident(asset, topic, c, a) for a in artifacts)
            else:
                # A container its parser left without artifacts: it would
                # otherwise never reach XSOAR.
                incidents.append(container_incident(asset, topic, c))
        cursor = page.get("cursor", cursor)
        if not page.get("more") or len(incidents) >= max_fetch:
            break
    if per == "container":
        incidents = [container_incident(asset, topic, c) for c in incidents]
    demisto.debug("{}: fetched {} incidents from asset {}, cursor {}".format(INTEGRATION, len(incidents), asset, cursor))
    return incidents, {"asset": asset, "cursor": cursor}


def test_module(client, params):
    asset = params.get("asset") or ""
    asset_doc = client.get_asset(asset)
    action_ok(client.run_action("test_connectivity", asset, {}))
    if param_bool(params, "isFetch", False):
        max_fetch_param(params)
        # The pull endpoint answers for this asset: reads nothing.
        client.pull(asset, "end", 1, 1)
    demisto.debug("{}: asset {} (topic {}) reachable".format(INTEGRATION, asset, (asset_doc.get("config") or {}).get("topic")))
    return "ok"


def post_data_command(client, params, args):
    asset = params.get("asset") or ""
    parameters = {"data": args.get("data"), "data_type": args.get("data_type") or "JSON"}
    topic = args.get("topic")
    if not topic:
        topic = (client.get_asset(asset).get("config") or {}).get("topic")
    parameters["topic"] = topic
    timeout = arg_to_number(args.get("timeout"), arg_name="timeout")
    if timeout is not None:
        parameters["timeout"] = timeout
    if args.get("json_format"):
        parameters["json_format"] = args["json_format"]
    if args.get("key") is not None and args.get("key") != "":
        parameters["key"] = args["key"]
    headers = args.get("headers")
    if headers:
        if isinstance(headers, str):
            try:
                headers = json.loads(headers)
            except ValueError as e:
                raise DemistoException("headers is not JSON: {} (give an object of strings, e.g. {{\"source\": \"xsoar\"}})".format(e))
        if not isinstance(headers, dict):
            raise DemistoException("headers must be a JSON object of strings, e.g. {\"source\": \"xsoar\"}")
        parameters["headers"] = headers
    partition = arg_to_number(args.get("partition"), arg_name="partition")
    if partition is not None:
        parameters["partition"] = partition
    if args.get("timestamp"):
        ts = args["timestamp"]
        parameters["timestamp"] = int(ts) if str(ts).isdigit() else ts
    # Post data waits up to timeout seconds for the acknowledgements (a
    # minute with 0): the request waits longer than soarkafka does.
    wait = max(client.timeout, (timeout or 60) + 30)
    result = action_ok(client.run_action("post_data", asset, parameters, timeout=wait))
    data = result.get("data") or []
    out = {"status": result.get("status"), "message": result.get("message"), "topic": topic,
           "summary": result.get("summary"), "data": data}
    return CommandResults(
        outputs_prefix="SoarKafka.PostData",
        outputs=out,
        readable_output=tableToMarkdown("soarkafka post data to {}: {}".format(topic, result.get("message")), data,
                                        headers=["topic", "partition", "offset", "timestamp", "status", "error"],
                                        removeNull=True),
        raw_response=result,
    )


def poll_command(client, params, args):
    asset = params.get("asset") or ""
    parameters = {}
    if argToBoolean(args.get("poll_now", False)):
        parameters["poll_now"] = True
    for name in ("artifact_count", "container_count"):
        n = arg_to_number(args.get(name), arg_name=name)
        if n is not None:
            parameters[name] = n
    result = action_ok(client.run_action("on_poll", asset, parameters))
    out = {"asset": asset, "status": result.get("status"), "message": result.get("message"),
           "summary": result.get("summary") or {}, "data": result.get("data") or []}
    return CommandResults(
        outputs_prefix="SoarKafka.Poll",
        outputs=out,
        readable_output=tableToMarkdown("soarkafka on poll of {}: {}".format(asset, result.get("message")),
                                        out["data"], headers=["id", "name", "artifact_count", "created"]),
        raw_response=result,
    )


def ingest_status_command(client, params, args):
    asset = params.get("asset") or ""
    status = client.ingest_status(asset)
    status.setdefault("asset", asset)
    return CommandResults(
        outputs_prefix="SoarKafka.IngestStatus",
        outputs_key_field="asset",
        outputs=status,
        readable_output=tableToMarkdown("soarkafka ingest status of {} (lag {})".format(asset, status.get("lag")),
                                        status.get("partitions") or []),
        raw_response=status,
    )


def list_topics_command(client, params, args):
    asset = params.get("asset") or ""
    answer = client.topics(asset, args.get("topic"))
    topics = answer.get("topics") or []
    rows = []
    for t in topics:
        for p in t.get("partitions") or []:
            row = {"topic": t.get("topic")}
            row.update(p)
            rows.append(row)
    return CommandResults(
        outputs_prefix="SoarKafka.Topic",
        outputs_key_field="topic",
        outputs=topics,
        readable_output=tableToMarkdown("Kafka topics seen by soarkafka asset {}".format(asset), rows,
                                        headers=["topic", "partition", "earliest_offset", "latest_offset", "leader"]),
        raw_response=answer,
    )


COMMANDS = {
    "soarkafka-post-data": post_data_command,
    "soarkafka-poll": poll_command,
    "soarkafka-ingest-status": ingest_status_command,
    "soarkafka-list-topics": list_topics_command,
}


def param_bool(params, name, default):
    """A checkbox parameter; one left unset (None or "") is its default."""
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return argToBoolean(value)
    except ValueError:
        raise DemistoException("{} is {!r}: give true or false".format(name, value))


def api_token(params):
    token = params.get("api_token")
    if isinstance(token, dict):
        token = token.get("password")
    return token


def main():
    params = demisto.params()
    command = demisto.command()
    demisto.debug("{}: command {}".format(INTEGRATION, command))
    client = None
    try:
        if not params.get("asset"):
            raise DemistoException("Asset is empty: give the name of an asset kept in soarkafka (GET /v1/assets lists them)")
        client = Client(params.get("url"), api_token(params), verify=not param_bool(params, "insecure", False),
                        proxy=param_bool(params, "proxy", False))
        if command == "test-module":
            return_results(test_module(client, params))
        elif command == "fetch-incidents":
            incidents, next_run = fetch_incidents(client, params, demisto.getLastRun() or {})
            # The incidents first, then the cursor past them: a run that
            # dies between the two fetches them again rather than losing
            # them.
            demisto.incidents(incidents)
            demisto.setLastRun(next_run)
        elif command in COMMANDS:
            return_results(COMMANDS[command](client, params, demisto.args()))
        else:
            raise NotImplementedError("command {} is not implemented by the soarkafka integration".format(command))
    except Exception as e:
        return_error("Failed to execute {} command. Error: {}".format(command, e), error=e)
    finally:
        if client is not None:
            client.session.close()


if __name__ in ("__main__", "__builtin__", "builtins"):
    main()
