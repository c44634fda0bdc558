"""Runs one command of the soarkafka XSOAR integration with the stand-ins,
outside XSOAR, and prints what it handed back as JSON: for trying an
instance's settings, and for the steps of docs/xsoar.md.

    python3 run_command.py [--script FILE] [--last-run FILE] [--param name=value ...] [--entries] COMMAND [name=value ...]

The instance's url, api_token and asset come from SOARKAFKA_URL,
SOARKAFKA_TOKEN and SOARKAFKA_ASSET, other parameters from --param; the
command's arguments follow it. --script is the integration script: the
source (../../xsoar/SoarKafka.py, the default) or one taken out of the
unified YAML. It prints the context and the readable output a command
gives (--entries: the entries whole), or a fetch's incidents and last run.
--last-run keeps the fetch's last run in a file between runs,
as XSOAR keeps it for an instance.
"""

import argparse
import json
import os
import sys

from xsoar_harness import Instance

HERE = os.path.dirname(os.path.abspath(__file__))


def pairs(items):
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit("{!r} is not name=value".format(item))
        out[name] = value
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--script", default=os.path.join(HERE, "..", "..", "xsoar", "SoarKafka.py"))
    p.add_argument("--last-run", help="file that keeps the fetch's last run")
    p.add_argument("--param", action="append", default=[], help="an instance parameter, name=value")
    p.add_argument("--entries", action="store_true", help="print the war room entries whole (raw response included)")
    p.add_argument("command")
    p.add_argument("args", nargs="*", help="the command's arguments, name=value")
    opts = p.parse_args()

    params = {"url": os.environ.get("SOARKAFKA_URL", ""),
              "api_token": {"identifier": "", "password": os.environ.get("SOARKAFKA_TOKEN", "")},
              "asset": os.environ.get("SOARKAFKA_ASSET", "")}
    params.update(pairs(opts.param))
    inst = Instance(params, script=opts.script)
    if opts.last_run and os.path.exists(opts.last_run):
        with open(opts.last_run, encoding="utf-8") as f:
            inst.last_run = json.load(f)
    r = inst.run(opts.command, pairs(opts.args))
    if opts.last_run and opts.command == "fetch-incidents":
        with open(opts.last_run, "w", encoding="utf-8") as f:
            json.dump(inst.last_run, f)
    out = {"ok": r.ok}
    if r.error is not None:
        out["error"] = str(r.error)
    for e in r.error_entries:
        out["error"] = e["Contents"]
    if opts.command == "fetch-incidents":
        out["incidents"] = r.incidents
        out["last_run"] = inst.last_run
    elif opts.entries:
        out["entries"] = r.results
    elif r.ok:
        notes = [e for e in r.results if isinstance(e, dict) and e.get("Type") == 1]
        context = {}
        for e in notes:
            context.update(e.get("EntryContext") or {})
        out["readable"] = "".join(e.get("HumanReadable") or str(e.get("Contents")) for e in notes)
        if context:
            out["context"] = context
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main())
