"""Stand-in for phantom.base_connector.BaseConnector, for the tests of the
soarkafka app. It runs an app-run document the way SOAR does and keeps what
the app saves in a SQLite file, so a test can read it back and a second
process (a retried run) sees what the first one saved.

The platform rules it enforces, and where each is documented:

1. An app-run document ({"identifier", "config", "asset_id", "parameters":
   [...]}) runs initialize(), then handle_action(param) once per parameter
   set, then finalize(); a failed initialize() fails the run without calling
   handle_action. (The SOAR SDK's BaseConnector shim `_handle_action`; the
   Kafka app's own connector relies on the same order.)
2. save_container(container) returns (status, message, container_id). A
   container whose source_data_identifier already exists in the same asset
   is not created again: the call succeeds with the message "Duplicate
   container found" and the existing id. (The issue's platform facts; the
   SOAR SDK's on_poll decorator and its test_on_poll_yields_container_duplicate
   treat exactly this answer as success.) The SDK's tests also show the same
   answer with a failed status and the existing id
   (test_on_poll_reuses_duplicate_container_id_for_artifacts), which the SDK
   reuses as well; PHANTOM_STANDIN_DUPLICATE_STATUS=error gives that form.
3. A container needs a name and a label, and may carry only the fields
   SOAR's container accepts (the SOAR SDK's Container model, which forbids
   any other field). Anything else is refused with APP_ERROR.
4. save_artifacts(artifacts) returns (status, message, ids). Every artifact
   needs the container_id of an existing container (REST /rest/artifact:
   container_id is required) and may carry only the fields SOAR's artifact
   accepts (the SOAR SDK's Artifact model).
5. Duplicate artifacts: an artifact whose source_data_identifier already
   exists in the same container is not stored again; its existing id is
   returned, as the REST API answers a duplicate with existing_artifact_id
   (the SOAR SDK's Artifact.create). The platform's own duplicate test
   compares its artifact hash (the `hash` member of the artifact schema);
   this stand-in compares source_data_identifier. The app re-sends a
   retried artifact byte for byte, so both rules find the retry a duplicate.
6. load_state() / save_state(state) keep a JSON document per asset between
   runs (the platform keeps it in a file under the app's state directory).
7. is_poll_now(): the app-run document's is_poll_now when it is given;
   otherwise true when container_count is given and is not 4294967295, the
   value a scheduled poll passes (the SOAR SDK's OnPollParams.is_manual_poll).

Test hooks (environment):
- PHANTOM_STANDIN_DIR: directory of the store (soar.db) and state files.
- PHANTOM_STANDIN_DUPLICATE_STATUS=error: a duplicate container is answered
  (APP_ERROR, "Duplicate container found", existing id), the other form.
- PHANTOM_STANDIN_KILL_ON_SAVE_STATE=1: the process kills itself with
  SIGKILL when the app calls save_state, before the state is written: a run
  killed between its saves and save_state.
"""
import json
import os
import signal
import sqlite3
import sys

from phantom.action_result import ActionResult

SCHEDULED_POLL_COUNT = 4294967295

CONTAINER_FIELDS = frozenset((
    "name", "label", "description", "source_data_identifier", "external_id", "severity", "status",
    "tags", "owner_id", "sensitivity", "artifacts", "asset_id", "close_time", "custom_fields", "data",
    "due_time", "end_time", "ingest_app_id", "kill_chain", "role_id", "run_automation", "start_time",
    "open_time", "tenant_id", "container_type", "template_id", "authorized_users", "artifact_count",
    "container_id",
))
ARTIFACT_FIELDS = frozenset((
    "name", "label", "description", "type", "severity", "source_data_identifier", "container_id",
    "data", "run_automation", "owner_id", "cef", "cef_types", "ingest_app_id", "tags", "start_time",
    "end_time", "kill_chain",
))

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_id TEXT NOT NULL,
    source_data_identifier TEXT,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id INTEGER NOT NULL REFERENCES containers(id),
    source_data_identifier TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS artifacts_container ON artifacts(container_id, source_data_identifier);
CREATE INDEX IF NOT EXISTS containers_sdi ON containers(asset_id, source_data_identifier);
CREATE TABLE IF NOT EXISTS duplicates (kind TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (kind));
"""


def store_dir():
    d = os.environ.get("PHANTOM_STANDIN_DIR")
    if not d:
        raise RuntimeError("PHANTOM_STANDIN_DIR is not set")
    return d


def open_store():
    db = sqlite3.connect(os.path.join(store_dir(), "soar.db"), timeout=30)
    db.executescript(SCHEMA)
    return db


def dump():
    """The store as JSON: every container and artifact with its id, and the
    duplicate counts."""
    db = open_store()
    out = {"containers": [], "artifacts": [], "duplicates": {}}
    for cid, asset_id, body in db.execute("SELECT id, asset_id, body FROM containers ORDER BY id"):
        c = json.loads(body)
        c["id"], c["asset_id"] = cid, asset_id
        out["containers"].append(c)
    for aid, container_id, body in db.execute("SELECT id, container_id, body FROM artifacts ORDER BY id"):
        a = json.loads(body)
        a["id"], a["container_id"] = aid, container_id
        out["artifacts"].append(a)
    for kind, count in db.execute("SELECT kind, count FROM duplicates"):
        out["duplicates"][kind] = count
    db.close()
    return out


class BaseConnector(object):
    def __init__(self):
        self.__action_results = []
        self.__config = {}
        self.__identifier = ""
        self.__asset_id = ""
        self.__doc = {}
        self.__param = {}
        self.__status = True
        self.__message = ""
        self.print_progress_message = False

    # -- what SOAR hands the app -----------------------------------------

    def get_config(self):
        return self.__config

    def get_action_identifier(self):
        return self.__identifier

    def get_asset_id(self):
        return self.__asset_id

    def get_app_id(self):
        return "standin"

    def is_poll_now(self):
        if "is_poll_now" in self.__doc:
            return bool(self.__doc["is_poll_now"])
        count = self.__param.get("container_count")
        if count is None or count == "":
            return False
        return int(count) != SCHEDULED_POLL_COUNT

    # -- progress and results --------------------------------------------

    def save_progress(self, message, *args, **kwargs):
        if self.print_progress_message:
            sys.stderr.write("progress: " + str(message) + "\n")

    def send_progress(self, message, *args, **kwargs):
        self.save_progress(message)

    def debug_print(self, tag, dump_object=""):
        sys.stderr.write("debug: {0} {1}\n".format(tag, dump_object))

    def error_print(self, tag, dump_object=""):
        sys.stderr.write("error: {0} {1}\n".format(tag, dump_object))

    def add_action_result(self, action_result):
        if not isinstance(action_result, ActionResult):
            raise TypeError("add_action_result needs an ActionResult")
        self.__action_results.append(action_result)
        return action_result

    def get_action_results(self):
        return self.__action_results

    def set_status(self, status_code, status_message="", exception=None):
        self.__status = bool(status_code)
        self.__message = status_message
        return self.__status

    def get_status(self):
        return self.__status

    # -- state -----------------------------------------------------------

    def _state_path(self):
        return os.path.join(store_dir(), "state_{0}.json".format(self.__asset_id or "none"))

    def load_state(self):
        try:
            with open(self._state_path()) as f:
                return json.load(f)
        except (IOError, OSError, ValueError):
            return {}

    def save_state(self, state):
        if os.environ.get("PHANTOM_STANDIN_KILL_ON_SAVE_STATE") == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        tmp = self._state_path() + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self._state_path())
        return True

    # -- containers and artifacts ----------------------------------------

    def save_container(self, container, fail_on_duplicate=False):
        unknown = sorted(set(container) - CONTAINER_FIELDS)
        if unknown:
            return False, "container has fields SOAR does not accept: {0}".format(", ".join(unknown)), None
        if not container.get("name"):
            return False, "container needs a name", None
        if not container.get("label"):
            return False, "container needs a label", None
        if container.get("artifacts"):
            return False, "this stand-in does not take artifacts inside save_container", None
        sdi = container.get("source_data_identifier")
        db = open_store()
        try:
            if sdi:
                row = db.execute("SELECT id FROM containers WHERE asset_id = ? AND source_data_identifier = ?",
                                 (self.__asset_id, sdi)).fetchone()
                if row:
                    self._count_duplicate(db, "container")
                    db.commit()
                    if fail_on_duplicate or os.environ.get("PHANTOM_STANDIN_DUPLICATE_STATUS") == "error":
                        return False, "Duplicate container found", row[0]
                    return True, "Duplicate container found", row[0]
            cur = db.execute("INSERT INTO containers (asset_id, source_data_identifier, body) VALUES (?, ?, ?)",
                             (self.__asset_id, sdi, json.dumps(container, sort_keys=True)))
            db.commit()
            return True, "Container saved", cur.lastrowid
        finally:
            db.close()

    def save_artifacts(self, artifacts):
        db = open_store()
        try:
            ids = []
            for a in artifacts:
                unknown = sorted(set(a) - ARTIFACT_FIELDS)
                if unknown:
                    db.rollback()
                    return False, "artifact has fields SOAR does not accept: {0}".format(", ".join(unknown)), None
                cid = a.get("container_id")
                if cid is None or not db.execute("SELECT 1 FROM containers WHERE id = ?", (cid,)).fetchone():
                    db.rollback()
                    return False, "artifact needs the container_id of an existing container, got {0}".format(cid), None
                sdi = a.get("source_data_identifier")
                if sdi:
                    row = db.execute("SELECT id FROM artifacts WHERE container_id = ? AND source_data_identifier = ?",
                                     (cid, sdi)).fetchone()
                    if row:
                        self._count_duplicate(db, "artifact")
                        ids.append(row[0])
                        continue
                cur = db.execute("INSERT INTO artifacts (container_id, source_data_identifier, body) VALUES (?, ?, ?)",
                                 (cid, sdi, json.dumps(a, sort_keys=True)))
                ids.append(cur.lastrowid)
            db.commit()
            return True, "Artifacts saved", ids
        finally:
            db.close()

    def save_artifact(self, artifact):
        ok, message, ids = self.save_artifacts([artifact])
        return ok, message, ids[0] if ids else None

    @staticmethod
    def _count_duplicate(db, kind):
        db.execute("INSERT INTO duplicates (kind, count) VALUES (?, 1) "
                   "ON CONFLICT(kind) DO UPDATE SET count = count + 1", (kind,))

    # -- the run ---------------------------------------------------------

    def initialize(self):
        return True

    def finalize(self):
        return True

    def handle_action(self, param):
        raise NotImplementedError

    def _handle_action(self, in_json, handle):
        doc = json.loads(in_json)
        self.__doc = doc
        self.__identifier = doc.get("identifier", "")
        self.__config = doc.get("config") or {}
        self.__asset_id = str(doc.get("asset_id", ""))
        params = doc.get("parameters") or [{}]
        if self.initialize():
            for param in params:
                self.__param = param
                self.handle_action(param)
            self.finalize()
        else:
            for param in params:
                ar = self.add_action_result(ActionResult(dict(param)))
                ar.set_status(False, self.__message)
        results = [r.to_json() for r in self.__action_results]
        ok = bool(results) and all(r["status"] == "success" for r in results)
        return json.dumps({
            "identifier": self.__identifier,
            "status": "success" if ok else "failed",
            "message": self.__message if not results else "; ".join(r["message"] for r in results),
            "action_results": results,
        })


if __name__ == "__main__":
    # python -m phantom.base_connector dump: the store as JSON, for tests.
    if len(sys.argv) > 1 and sys.argv[1] == "dump":
        json.dump(dump(), sys.stdout)
    else:
        sys.stderr.write("usage: python -m phantom.base_connector dump\n")
        sys.exit(2)
