# File: soarkafka_connector.py
#
# The Splunk SOAR app of soarkafka. SOAR runs actions only inside apps
# installed on the platform; this app is the platform-side half: every action
# asks a soarkafka server over its REST API, and on poll saves what the server
# ingested from Kafka as SOAR containers and artifacts.
#
# It keeps the Splunk Kafka app's action names, identifiers, parameters and
# output data paths (test connectivity, on poll, post data), so playbooks
# written for that app run unchanged, and adds get ingest status, list topics
# and test parser.
#
# Runs on what SOAR ships: Python 3.9 to 3.13, the standard library and
# requests. No other dependency.
import json
import time
from urllib.parse import quote

import phantom.app as phantom
import requests
from phantom.action_result import ActionResult
from phantom.base_connector import BaseConnector

# SOAR passes this container_count to a scheduled poll; any other value is a
# manual "poll now" (the SOAR SDK's OnPollParams.is_manual_poll uses the same
# constant).
SCHEDULED_POLL_COUNT = 4294967295

# What one GET /v1/pull may ask for (the server's bounds).
PULL_MAX_CONTAINERS = 1000
PULL_MAX_ARTIFACTS = 10000

DEFAULT_MAX_CONTAINERS_PER_RUN = 500
DEFAULT_MAX_ARTIFACTS_PER_RUN = 20000
DEFAULT_POLL_NOW_ARTIFACTS = 10

# The fields SOAR's container and artifact accept (the SOAR SDK's Container
# and Artifact models, which forbid any other field, and the REST API's
# /rest/container and /rest/artifact). soarkafka's own members (id,
# kafka_asset, create_time, update_time, artifact_count, container, ...)
# are never sent; asset_id, ingest_app_id and container_id are set by the
# platform or by this app.
CONTAINER_FIELDS = (
    "name", "label", "description", "severity", "sensitivity", "status", "tags", "owner_id",
    "custom_fields", "data", "due_time", "start_time", "end_time", "close_time", "open_time",
    "kill_chain", "role_id", "run_automation", "tenant_id", "container_type", "template_id",
    "authorized_users", "external_id",
)
ARTIFACT_FIELDS = (
    "name", "label", "description", "type", "severity", "source_data_identifier", "data",
    "run_automation", "owner_id", "cef", "cef_types", "tags", "start_time", "end_time", "kill_chain",
)

# The Kafka app's asset fields, sent inline to soarkafka when the asset names
# no soarkafka asset.
KAFKA_APP_FIELDS = (
    "hosts", "topic", "message_parser", "timeout", "read_from_beginning", "use_kerberos",
    "use_ssl", "cert_file", "key_file", "ca_cert",
)

STATE_VERSION = 1


class SoarkafkaError(Exception):
    """A request to soarkafka that failed, with a message for the user."""


def container_sdi(soarkafka_id):
    """The SOAR source_data_identifier of a soarkafka container: derived from
    the server's container id, which never changes, so a retried save finds
    the container SOAR already has ("Duplicate container found")."""
    return "soarkafka:container:{0}".format(soarkafka_id)


def soar_container(container, label):
    """The SOAR container body of a soarkafka container: only the fields SOAR
    accepts, the source_data_identifier derived from soarkafka's id, and the
    SOAR asset's ingest label when it has one."""
    body = {}
    for field in CONTAINER_FIELDS:
        if field in container and container[field] is not None:
            body[field] = container[field]
    body["source_data_identifier"] = container_sdi(container["id"])
    if label:
        body["label"] = label
    return body


def soar_artifact(artifact, container_id):
    """The SOAR artifact body of a soarkafka artifact, in the SOAR container
    container_id."""
    body = {}
    for field in ARTIFACT_FIELDS:
        if field in artifact and artifact[field] is not None:
            body[field] = artifact[field]
    body["container_id"] = container_id
    return body


def positive_int(value, default):
    """value as a positive whole number, or default when absent or not one."""
    if value is None or value == "":
        return default
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default


class Soarkafka(object):
    """A client of soarkafka's REST API."""

    def __init__(self, base_url, token, verify):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"ph-auth-token": token, "Accept": "application/json"})
        self.session.verify = verify

    def request(self, method, path, params=None, body=None, timeout=60):
        url = self.base_url + path
        try:
            resp = self.session.request(method, url, params=params, json=body, timeout=(10, timeout))
        except requests.exceptions.SSLError as e:
            raise SoarkafkaError(
                "TLS to soarkafka at {0} failed: {1} (check base_url, or the server's certificate; "
                "verify_server_cert off only for a test server)".format(self.base_url, e))
        except requests.exceptions.ConnectionError as e:
            raise SoarkafkaError(
                "could not reach soarkafka at {0}: {1} (check base_url and that the server runs)".format(self.base_url, e))
        except requests.exceptions.Timeout:
            raise SoarkafkaError("soarkafka at {0} did not answer {1} {2} within {3}s".format(self.base_url, method, path, timeout))
        if resp.status_code == 401:
            raise SoarkafkaError("soarkafka refused the API token (HTTP 401): check api_token")
        try:
            doc = resp.json()
        except ValueError:
            doc = None
        if resp.status_code >= 400:
            raise SoarkafkaError(error_message(resp.status_code, method, path, doc, resp.text))
        if doc is None:
            raise SoarkafkaError("soarkafka answered {0} {1} with a body that is not JSON (is base_url soarkafka's address?)".format(method, path))
        return doc


def error_message(status, method, path, doc, text):
    """The server's JSON error ({"error": {"code", "message", "fields"}}) as
    one line naming every bad field."""
    err = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict):
        return "soarkafka answered {0} {1} with HTTP {2}: {3}".format(method, path, status, (text or "")[:500])
    msg = "soarkafka refused {0} {1} (HTTP {2}): {3}".format(method, path, status, err.get("message", ""))
    fields = err.get("fields") or []
    if fields:
        msg += " (" + "; ".join("{0}: {1}".format(f.get("field"), f.get("message")) for f in fields if isinstance(f, dict)) + ")"
    return msg


class SoarkafkaConnector(BaseConnector):
    ACTION_ID_TEST_CONNECTIVITY = "test_connectivity"
    ACTION_ID_ON_POLL = "on_poll"
    ACTION_ID_POST_DATA = "post_data"
    ACTION_ID_GET_INGEST_STATUS = "get_ingest_status"
    ACTION_ID_LIST_TOPICS = "list_topics"
    ACTION_ID_TEST_PARSER = "test_parser"

    def __init__(self):
        super(SoarkafkaConnector, self).__init__()
        self._state = {}
        self._client = None
        self._config = {}

    def initialize(self):
        self._state = self.load_state() or {}
        if not isinstance(self._state, dict) or self._state.get("version") not in (None, STATE_VERSION):
            self._state = {}
        self._state["version"] = STATE_VERSION
        self._config = self.get_config()
        base_url = (self._config.get("base_url") or "").strip()
        token = self._config.get("api_token") or ""
        if not base_url.startswith(("http://", "https://")):
            return self.set_status(phantom.APP_ERROR, "base_url must be soarkafka's address, e.g. https://soarkafka.example:8080")
        if not token:
            return self.set_status(phantom.APP_ERROR, "api_token is empty: set the soarkafka API token")
        if not (self._config.get("asset") or "").strip() and not (self._config.get("hosts") and self._config.get("topic")):
            return self.set_status(
                phantom.APP_ERROR,
                "set asset (the name of an asset kept in soarkafka), or the Kafka fields hosts and topic to send inline")
        self._client = Soarkafka(base_url, token, bool(self._config.get("verify_server_cert", True)))
        return phantom.APP_SUCCESS

    def finalize(self):
        return phantom.APP_SUCCESS

    # -- the asset ---------------------------------------------------------

    def _stored_asset(self):
        return (self._config.get("asset") or "").strip()

    def _soar_asset_id(self):
        return str(self.get_asset_id())

    def _pull_key(self):
        """The asset name GET /v1/pull and the ingest status take: the stored
        asset's name, or soar:<asset_id>, the key under which soarkafka keeps
        an inline configuration's polls."""
        return self._stored_asset() or "soar:" + self._soar_asset_id()

    def _ingest_label(self):
        ingest = self._config.get("ingest")
        if isinstance(ingest, dict):
            return ingest.get("container_label") or ""
        return ""

    def _inline_config(self):
        """The Kafka app's fields of this asset, plus extra_config and the
        ingest label, as the inline config of an app-run document."""
        config = {}
        extra = self._config.get("extra_config")
        if extra:
            try:
                parsed = json.loads(extra)
            except ValueError as e:
                raise SoarkafkaError("extra_config is not JSON: {0} (give a JSON object of soarkafka asset fields)".format(e))
            if not isinstance(parsed, dict):
                raise SoarkafkaError("extra_config must be a JSON object of soarkafka asset fields, e.g. {\"sasl_mechanism\": \"PLAIN\"}")
            config.update(parsed)
        for field in KAFKA_APP_FIELDS:
            value = self._config.get(field)
            if value is None or value == "":
                continue
            if field == "timeout":
                value = int(float(value))
            config[field] = value
        label = self._ingest_label()
        if label:
            ingest = dict(config.get("ingest") or {})
            ingest.setdefault("container_label", label)
            config["ingest"] = ingest
        return config

    def _action_body(self, parameters):
        """The body of POST /v1/actions/{id}: the stored asset by name, or the
        SOAR app-run document's config and asset_id."""
        if self._stored_asset():
            return {"asset": self._stored_asset(), "parameters": parameters}
        return {"config": self._inline_config(), "asset_id": self._soar_asset_id(), "parameters": parameters}

    def _run_server_action(self, identifier, parameters, timeout=120):
        return self._client.request("POST", "/v1/actions/" + identifier, body=self._action_body(parameters), timeout=timeout)

    @staticmethod
    def _copy_result(action_result, result):
        """Copy a soarkafka ActionResult into the SOAR one: data, summary,
        status and message."""
        for item in result.get("data") or []:
            action_result.add_data(item)
        summary = result.get("summary")
        if isinstance(summary, dict) and summary:
            action_result.update_summary(summary)
        status = phantom.APP_SUCCESS if result.get("status") == "success" else phantom.APP_ERROR
        return action_result.set_status(status, result.get("message") or "")

    # -- actions -----------------------------------------------------------

    def _test_connectivity(self, param):
        action_result = self.add_action_result(ActionResult(dict(param)))
        self.save_progress("Asking soarkafka at {0} to test the asset's Kafka connection".format(self._client.base_url))
        result = self._run_server_action(self.ACTION_ID_TEST_CONNECTIVITY, {})
        for line in (result.get("message") or "").splitlines():
            self.save_progress(line)
        self._copy_result(action_result, result)
        if result.get("status") == "success":
            self.save_progress("Test Connectivity Passed")
        else:
            self.save_progress("Test Connectivity Failed")
        return action_result.get_status()

    def _post_data(self, param):
        action_result = self.add_action_result(ActionResult(dict(param)))
        parameters = {}
        for name in ("data_type", "data", "topic", "timeout", "key", "partition"):
            if param.get(name) is not None and param.get(name) != "":
                parameters[name] = param[name]
        headers = param.get("headers")
        if headers:
            try:
                parameters["headers"] = json.loads(headers) if not isinstance(headers, dict) else headers
            except ValueError as e:
                return action_result.set_status(phantom.APP_ERROR, "headers is not JSON: {0} (give an object of strings, e.g. {{\"source\": \"soar\"}})".format(e))
        wait = positive_int(param.get("timeout"), 0)
        result = self._run_server_action(self.ACTION_ID_POST_DATA, parameters, timeout=max(90, wait + 60))
        return self._copy_result(action_result, result)

    def _get_ingest_status(self, param):
        action_result = self.add_action_result(ActionResult(dict(param)))
        key = self._pull_key()
        if self._stored_asset():
            status = self._client.request("GET", "/v1/assets/{0}/ingest".format(quote(key, safe="")))
        else:
            # An inline asset's polls are kept under soar:<asset id>.
            status = self._client.request("POST", "/v1/ingest/status", body={
                "config": self._inline_config(), "asset_id": self._soar_asset_id()})
        action_result.add_data(status)
        summary = {}
        for name in ("lag", "scheduled", "interval", "dead_lettered", "gap_count", "gap_messages"):
            if status.get(name) is not None:
                summary[name] = status[name]
        last = status.get("last_poll")
        if isinstance(last, dict):
            for name in ("status", "started_at", "error", "messages_read"):
                if last.get(name) is not None:
                    summary["last_poll_" + name] = last[name]
        summary["app_cursor_saved"] = bool((self._state.get("cursors") or {}).get(key))
        action_result.update_summary(summary)
        return action_result.set_status(phantom.APP_SUCCESS, "Ingest status of soarkafka asset {0}: lag {1}".format(
            key, status.get("lag")))

    def _list_topics(self, param):
        action_result = self.add_action_result(ActionResult(dict(param)))
        topic = (param.get("topic") or "").strip()
        if self._stored_asset():
            query = {"asset": self._stored_asset()}
            if topic:
                query["topic"] = topic
            doc = self._client.request("GET", "/v1/topics", params=query)
        else:
            body = {"config": self._inline_config(), "asset_id": self._soar_asset_id()}
            if topic:
                body["topic"] = topic
            doc = self._client.request("POST", "/v1/topics", body=body)
        topics = doc.get("topics") or []
        partitions = 0
        for t in topics:
            for p in t.get("partitions") or []:
                partitions += 1
                row = {"topic": t.get("topic")}
                row.update(p)
                if p.get("latest_offset") is not None and p.get("earliest_offset") is not None:
                    row["messages"] = p["latest_offset"] - p["earliest_offset"]
                action_result.add_data(row)
        action_result.update_summary({"total_topics": len(topics), "total_partitions": partitions})
        return action_result.set_status(phantom.APP_SUCCESS, "{0} topics, {1} partitions".format(len(topics), partitions))

    def _test_parser(self, param):
        action_result = self.add_action_result(ActionResult(dict(param)))
        body = {}
        source = param.get("source")
        parser = (param.get("parser") or "").strip()
        if source:
            body["source"] = source
        elif parser:
            body["parser"] = parser
        else:
            body["parser"] = (self._config.get("message_parser") or "").strip() or "default"
        if param.get("topic"):
            body["topic"] = param["topic"]
        messages = param.get("messages")
        if messages:
            try:
                values = json.loads(messages)
            except ValueError:
                values = None
            if not isinstance(values, list):
                # Not a JSON list: one message a line, as the Kafka app's text.
                values = [line for line in str(messages).splitlines() if line.strip()]
            body["messages"] = [{"value": v, "offset": i} for i, v in enumerate(values)]
        else:
            if not self._stored_asset():
                return action_result.set_status(
                    phantom.APP_ERROR,
                    "give messages, or set asset (a soarkafka asset name) to test on a live sample of its topic")
            body["asset"] = self._stored_asset()
            body["sample"] = {"from": param.get("sample_from") or "latest",
                              "count": positive_int(param.get("sample_count"), 10)}
        out = self._client.request("POST", "/v1/parsers/test", body=body, timeout=120)
        run = out.get("run") or {}
        results = run.get("results") or []
        artifacts = 0
        for r in results:
            artifacts += len(r.get("artifacts") or [])
            action_result.add_data(r)
        summary = {"parser": out.get("parser"), "messages": out.get("messages"), "containers": len(results),
                   "artifacts": artifacts, "duration_ms": out.get("duration_ms")}
        if run.get("log"):
            summary["log"] = run["log"]
        action_result.update_summary(summary)
        err = out.get("error")
        if err:
            where = ""
            problems = err.get("problems") or []
            if problems:
                where = " (line {0}, column {1}: {2})".format(problems[0].get("line"), problems[0].get("column"), problems[0].get("message"))
            if err.get("log"):
                action_result.update_summary({"log": err["log"]})
            return action_result.set_status(phantom.APP_ERROR, "parser {0} failed: {1}: {2}{3}".format(
                out.get("parser"), err.get("kind"), err.get("message"), where))
        return action_result.set_status(phantom.APP_SUCCESS, "parser {0} made {1} containers and {2} artifacts from {3} messages".format(
            out.get("parser"), len(results), artifacts, out.get("messages")))

    # -- on poll -----------------------------------------------------------

    def _scheduled_by_soarkafka(self):
        """Whether soarkafka's own scheduler polls the stored asset
        (ingest.interval set and ingest.enabled): then on poll only pulls."""
        if not self._stored_asset():
            return False
        doc = self._client.request("GET", "/v1/assets/{0}".format(quote(self._stored_asset(), safe="")))
        ingest = (doc.get("config") or {}).get("ingest") or {}
        return bool(ingest.get("interval")) and ingest.get("enabled", True) is not False

    def _save(self, container, label, saved):
        """Save one soarkafka container and its artifacts in SOAR. Returns
        the SOAR container id; raises SoarkafkaError when SOAR refused."""
        body = soar_container(container, label)
        ret_val, message, container_id = self.save_container(body)
        duplicate = "duplicate container found" in (message or "").lower()
        if (not ret_val and not duplicate) or container_id is None:
            raise SoarkafkaError("SOAR did not save container {0} (soarkafka id {1}): {2}".format(
                body.get("name"), container.get("id"), message))
        artifacts = [soar_artifact(a, container_id) for a in container.get("artifacts") or []]
        if artifacts:
            ret_val, message, _ = self.save_artifacts(artifacts)
            if not ret_val:
                raise SoarkafkaError("SOAR did not save the {0} artifacts of container {1} (soarkafka id {2}): {3}".format(
                    len(artifacts), container_id, container.get("id"), message))
        saved.append({"id": container_id, "soarkafka_id": container.get("id"), "name": body.get("name"),
                      "artifacts_saved": len(artifacts), "duplicate": duplicate})
        return container_id

    def _on_poll(self, param):
        action_result = self.add_action_result(ActionResult(dict(param)))
        label = self._ingest_label()
        saved = []
        if self.is_poll_now():
            return self._poll_now(action_result, param, label, saved)

        max_containers = min(positive_int(param.get("container_count"), SCHEDULED_POLL_COUNT),
                             positive_int(self._config.get("max_containers_per_run"), DEFAULT_MAX_CONTAINERS_PER_RUN))
        max_artifacts = min(positive_int(param.get("artifact_count"), SCHEDULED_POLL_COUNT),
                            positive_int(self._config.get("max_artifacts_per_run"), DEFAULT_MAX_ARTIFACTS_PER_RUN))

        poll_message = ""
        poll_failed = False
        if self._scheduled_by_soarkafka():
            self.save_progress("soarkafka polls asset {0} on its own schedule; pulling what it stored".format(self._stored_asset()))
        else:
            self.save_progress("Asking soarkafka to poll")
            result = self._run_server_action(self.ACTION_ID_ON_POLL, {}, timeout=300)
            poll_message = result.get("message") or ""
            poll_failed = result.get("status") != "success"
            self.save_progress("soarkafka's poll: {0}".format(poll_message))
            if isinstance(result.get("summary"), dict):
                action_result.update_summary({"poll": result["summary"]})

        key = self._pull_key()
        cursors = self._state.setdefault("cursors", {})
        cursor = cursors.get(key) or ""
        containers_left, artifacts_left = max_containers, max_artifacts
        artifacts_saved, more, failure = 0, False, None
        while containers_left > 0 and artifacts_left > 0:
            query = {"asset": key, "max_containers": min(containers_left, PULL_MAX_CONTAINERS),
                     "max_artifacts": min(artifacts_left, PULL_MAX_ARTIFACTS)}
            if cursor:
                query["cursor"] = cursor
            try:
                page = self._client.request("GET", "/v1/pull", params=query, timeout=120)
                for c in page.get("containers") or []:
                    self._save(c, label, saved)
                    containers_left -= 1
                    n = len(c.get("artifacts") or [])
                    artifacts_left -= n
                    artifacts_saved += n
            except SoarkafkaError as e:
                failure = str(e)
                break
            # Every save of the page succeeded: the cursor may move past it.
            cursor = page.get("cursor") or cursor
            more = bool(page.get("more"))
            if not more:
                break
        if cursor and cursor != cursors.get(key):
            cursors[key] = cursor
            # Saved only now, after every save before the cursor succeeded: a
            # run killed before this point pulls the same items again, and
            # SOAR's duplicate rules make the retry save nothing twice.
            self.save_state(self._state)

        for s in saved:
            action_result.add_data(s)
        action_result.update_summary({"containers_saved": len(saved), "artifacts_saved": artifacts_saved,
                                      "more": more or failure is not None})
        if failure:
            return action_result.set_status(phantom.APP_ERROR, failure)
        msg = "Saved {0} containers and {1} artifacts".format(len(saved), artifacts_saved)
        if more:
            msg += "; more remain for the next poll (max_containers_per_run {0}, max_artifacts_per_run {1})".format(max_containers, max_artifacts)
        if poll_failed:
            return action_result.set_status(phantom.APP_ERROR, "soarkafka's poll failed: {0}. {1}".format(poll_message, msg))
        if poll_message:
            msg += ". soarkafka: " + poll_message
        return action_result.set_status(phantom.APP_SUCCESS, msg)

    def _poll_now(self, action_result, param, label, saved):
        """Poll now: soarkafka reads the first artifact_count messages of the
        topic without moving any position; show them in SOAR. The app's
        cursor does not move either."""
        count = positive_int(param.get("artifact_count"), DEFAULT_POLL_NOW_ARTIFACTS)
        result = self._run_server_action(self.ACTION_ID_ON_POLL, {"poll_now": True, "artifact_count": count}, timeout=300)
        if result.get("status") != "success":
            return action_result.set_status(phantom.APP_ERROR, "soarkafka's poll now failed: {0}".format(result.get("message")))
        left = count
        artifacts_saved = 0
        for item in result.get("data") or []:
            if left <= 0:
                break
            container = self._client.request("GET", "/v1/containers/{0}".format(int(item["id"])))
            container["artifacts"] = (container.get("artifacts") or [])[:left]
            try:
                self._save(container, label, saved)
            except SoarkafkaError as e:
                return action_result.set_status(phantom.APP_ERROR, str(e))
            left -= len(container["artifacts"])
            artifacts_saved += len(container["artifacts"])
        for s in saved:
            action_result.add_data(s)
        action_result.update_summary({"containers_saved": len(saved), "artifacts_saved": artifacts_saved, "more": False})
        return action_result.set_status(phantom.APP_SUCCESS, "Poll now: saved {0} containers and {1} artifacts. soarkafka: {2}".format(
            len(saved), artifacts_saved, result.get("message")))

    # -- dispatch ----------------------------------------------------------

    def handle_action(self, param):
        action_id = self.get_action_identifier()
        handlers = {
            self.ACTION_ID_TEST_CONNECTIVITY: self._test_connectivity,
            self.ACTION_ID_ON_POLL: self._on_poll,
            self.ACTION_ID_POST_DATA: self._post_data,
            self.ACTION_ID_GET_INGEST_STATUS: self._get_ingest_status,
            self.ACTION_ID_LIST_TOPICS: self._list_topics,
            self.ACTION_ID_TEST_PARSER: self._test_parser,
        }
        handler = handlers.get(action_id)
        if handler is None:
            action_result = self.add_action_result(ActionResult(dict(param)))
            return action_result.set_status(phantom.APP_ERROR, "unknown action {0}".format(action_id))
        started = time.time()
        try:
            return handler(param)
        except SoarkafkaError as e:
            results = self.get_action_results()
            action_result = results[-1] if results else self.add_action_result(ActionResult(dict(param)))
            return action_result.set_status(phantom.APP_ERROR, str(e))
        finally:
            self.debug_print("{0} took {1:.2f}s".format(action_id, time.time() - started))


def main():
    """Run one app-run document from a file, as SOAR's app test harness does:
    python soarkafka_connector.py input.json"""
    import sys

    if len(sys.argv) < 2:
        print("usage: {0} APP_RUN_JSON".format(sys.argv[0]))
        return 2
    with open(sys.argv[1]) as f:
        in_json = json.load(f)
    connector = SoarkafkaConnector()
    connector.print_progress_message = True
    ret_val = connector._handle_action(json.dumps(in_json), None)
    print(ret_val)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
