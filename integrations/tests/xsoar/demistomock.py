"""A stand-in for Cortex XSOAR's demisto object, for running the real
integration script outside XSOAR.

It holds one command run's inputs (params, args, command, the stored last
run) and records what the script hands back (results, incidents, the last
run to store, logs). It enforces the rules XSOAR documents for a fetch, so a
script that breaks them fails here as it would there:

- demisto.incidents takes a list of dicts, each with a non-empty string
  `name` and `rawJSON` a string holding JSON; `occurred`, when given, is an
  ISO 8601 time; `severity` is one of XSOAR's levels 0, 0.5, 1, 2, 3, 4
  (xsoar.pan.dev/docs/integrations/fetching-incidents, "Creating an
  Incident"). It is called once per fetch run, and only by fetch-incidents.
- demisto.getLastRun holds a value only in the fetch flow: "The value of
  demisto.getLastRun() is not stored between CLI command runs" (same page),
  so other commands see {}.
- demisto.setLastRun takes a JSON-serializable dict. What it sets is kept
  only when the fetch run ends without an error (return_error raises for
  fetch-incidents, so a failed fetch reports an error to the server and
  its last run is not saved); xsoar_harness.run applies it.
"""

import json
from datetime import datetime

SEVERITY_LEVELS = (0, 0.5, 1, 2, 3, 4)


class Run:
    """What one command run was given and what it handed back."""

    def __init__(self, command, params, args, last_run):
        self.command = command
        self.params = params
        self.args = args
        self.stored_last_run = last_run
        self.new_last_run = None
        self.incidents = None
        self.results = []
        self.logs = []


_run = None


def _start(command, params, args, last_run):
    global _run
    _run = Run(command, dict(params), dict(args), json.loads(json.dumps(last_run)))
    return _run


def _current():
    if _run is None:
        raise RuntimeError("demistomock: no command run started (use xsoar_harness.run)")
    return _run


def command():
    return _current().command


def params():
    return _current().params


def args():
    return _current().args


def getLastRun():
    r = _current()
    if r.command != "fetch-incidents":
        return {}
    return json.loads(json.dumps(r.stored_last_run))


def setLastRun(obj):
    r = _current()
    if not isinstance(obj, dict):
        raise TypeError("demisto.setLastRun takes a dict, got {}".format(type(obj).__name__))
    r.new_last_run = json.loads(json.dumps(obj))


def _check_occurred(value, where):
    if not isinstance(value, str):
        raise ValueError("{}: occurred must be an ISO 8601 string, got {!r}".format(where, value))
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    # Up to 6 fraction digits, as Python 3.9's fromisoformat takes.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits):]
        text = head + "." + (digits + "000000")[:6] + zone
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("{}: occurred {!r} is not ISO 8601".format(where, value))


def incidents(incs):
    r = _current()
    if r.command != "fetch-incidents":
        raise RuntimeError("demisto.incidents called by {}, not by fetch-incidents".format(r.command))
    if r.incidents is not None:
        raise RuntimeError("demisto.incidents called twice in one fetch run")
    if not isinstance(incs, list):
        raise TypeError("demisto.incidents takes a list, got {}".format(type(incs).__name__))
    for i, inc in enumerate(incs):
        where = "incident {}".format(i)
        if not isinstance(inc, dict):
            raise TypeError("{} is a {}, not a dict".format(where, type(inc).__name__))
        if not isinstance(inc.get("name"), str) or not inc["name"]:
            raise ValueError("{} has no name".format(where))
        if not isinstance(inc.get("rawJSON"), str):
            raise ValueError("{}: rawJSON must be a JSON string".format(where))
        json.loads(inc["rawJSON"])
        if "occurred" in inc and inc["occurred"] is not None:
            _check_occurred(inc["occurred"], where)
        if "severity" in inc and inc["severity"] not in SEVERITY_LEVELS:
            raise ValueError("{}: severity {!r} is not one of {}".format(where, inc["severity"], SEVERITY_LEVELS))
        json.dumps(inc)
    r.incidents = json.loads(json.dumps(incs))


def results(entry):
    _current().results.append(json.loads(json.dumps(entry)))


def debug(msg):
    _current().logs.append(("debug", str(msg)))


def info(msg):
    _current().logs.append(("info", str(msg)))


def error(msg):
    _current().logs.append(("error", str(msg)))
