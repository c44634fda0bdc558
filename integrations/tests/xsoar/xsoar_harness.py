"""Runs the integration script as XSOAR does: the code from the unified
YAML's script.script (its demistomock and CommonServerPython imports
already removed by the build), executed with `demisto` and
CommonServerPython's names defined in its globals, one command run at a
time.

SOARKAFKA_XSOAR_SCRIPT names the script file the Go test extracted from the
YAML that integrations.XSOARIntegration built; SOARKAFKA_XSOAR_DECLARED
names a JSON file with what the same YAML declares: each command's
arguments (defaultValue, required) and the configuration's defaultvalues.
XSOAR fills in a default for an argument or parameter left empty and
refuses a command whose required argument is missing, so the harness does
too (without the file, as run_command.py runs, it applies none).
"""

import json
import os

import CommonServerPython
import demistomock


class Instance:
    """An integration instance: its parameters and the last run XSOAR keeps
    for it between fetches."""

    def __init__(self, params, script=None):
        self.declared = {"params": {}, "commands": {}}
        if os.environ.get("SOARKAFKA_XSOAR_DECLARED"):
            with open(os.environ["SOARKAFKA_XSOAR_DECLARED"], encoding="utf-8") as f:
                self.declared = json.load(f)
        self.params = {}
        for name, default in self.declared["params"].items():
            if default is not None:
                self.params[name] = default
        self.params.update(params)
        self.last_run = {}
        self.script = script or os.environ["SOARKAFKA_XSOAR_SCRIPT"]
        with open(self.script, encoding="utf-8") as f:
            self.code = compile(f.read(), self.script, "exec")

    def _args(self, command, args):
        declared = self.declared["commands"].get(command)
        if declared is None:
            return dict(args)
        out = dict(args)
        for name, spec in declared.items():
            if out.get(name) in (None, "") and spec.get("default") is not None:
                out[name] = spec["default"]
            if spec.get("required") and out.get(name) in (None, ""):
                raise ValueError("{}: required argument {} missing (XSOAR refuses to run it)".format(command, name))
        unknown = set(out) - set(declared)
        if unknown:
            raise ValueError("{}: arguments {} are not declared in the YAML".format(command, sorted(unknown)))
        return out

    def run(self, command, args=None):
        """Runs one command. Returns the demistomock.Run with ok (no error
        reached the server), error (the exception a failed fetch raised),
        and error_entries (the error entries of other commands)."""
        r = demistomock._start(command, self.params, self._args(command, args or {}), self.last_run)
        namespace = {k: v for k, v in vars(CommonServerPython).items() if not k.startswith("_")}
        namespace.update({"__name__": "__main__", "demisto": demistomock})
        r.error = None
        try:
            exec(self.code, namespace)
        except SystemExit as e:
            # return_error ends a command with exit status 0 after its
            # error entry.
            if e.code not in (None, 0):
                r.error = e
        except Exception as e:  # a failed fetch: the server logs it
            r.error = e
        r.error_entries = [e for e in r.results if isinstance(e, dict) and e.get("Type") == 4]
        r.ok = r.error is None and not r.error_entries
        if command == "fetch-incidents" and r.ok and r.new_last_run is not None:
            self.last_run = r.new_last_run
        return r


def context(run):
    """The EntryContext of a run's note entries, merged."""
    out = {}
    for e in run.results:
        if isinstance(e, dict) and e.get("Type") == 1:
            out.update(e.get("EntryContext") or {})
    return out


def context_value(run, prefix):
    """The outputs a run put under prefix (a key field suffix ignored)."""
    for key, value in context(run).items():
        if key == prefix or key.startswith(prefix + "("):
            return value
    return None

