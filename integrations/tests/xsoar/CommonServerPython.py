"""A stand-in for the CommonServerPython functions the soarkafka integration
uses, with the behaviour of XSOAR's own (demisto/content,
Packs/Base/Scripts/CommonServerPython) where the integration depends on it:

- return_error raises for fetch-incidents, so the server records a failed
  fetch (and keeps the last run); for any other command it writes an error
  entry (Type 4) and exits.
- return_results writes a note entry (Type 1): a string as text, a
  CommandResults with its outputs under EntryContext.
- argToBoolean takes a bool or true/yes/false/no text and refuses the rest;
  arg_to_number gives None for an empty value and refuses text that is not
  a number, naming the argument.
"""

import json
import sys

import demistomock as demisto

entryTypes = {"note": 1, "error": 4}
formats = {"text": "text", "json": "json", "markdown": "markdown"}


class DemistoException(Exception):
    pass


def argToBoolean(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.lower() in ("true", "yes"):
            return True
        if value.lower() in ("false", "no"):
            return False
    raise ValueError("Argument does not contain a valid boolean-like value")


def arg_to_number(arg, arg_name=None, required=False):
    if arg is None or arg == "":
        if required:
            raise ValueError('Missing "{}"'.format(arg_name) if arg_name else "Missing required argument")
        return None
    if isinstance(arg, str):
        if arg.isdigit():
            return int(arg)
        try:
            return int(float(arg))
        except ValueError:
            raise ValueError('Invalid number: "{}"="{}"'.format(arg_name, arg) if arg_name else '"{}" is not a valid number'.format(arg))
    if isinstance(arg, int):
        return arg
    raise ValueError('Invalid number: "{}"="{}"'.format(arg_name, arg))


def tableToMarkdown(name, t, headers=None, removeNull=False, **kwargs):
    rows = t if isinstance(t, list) else [t]
    rows = [r for r in rows if r is not None]
    if headers is None:
        headers = []
        for r in rows:
            for k in (r.keys() if isinstance(r, dict) else []):
                if k not in headers:
                    headers.append(k)
    if removeNull:
        headers = [h for h in headers if any(isinstance(r, dict) and r.get(h) not in (None, "") for r in rows)]
    out = "### {}\n".format(name)
    if not rows:
        return out + "**No entries.**\n"
    out += "|" + "|".join(headers) + "|\n" + "|" + "|".join("---" for _ in headers) + "|\n"
    for r in rows:
        out += "|" + "|".join("" if not isinstance(r, dict) or r.get(h) is None else str(r.get(h)) for h in headers) + "|\n"
    return out


class CommandResults:
    def __init__(self, outputs_prefix=None, outputs_key_field=None, outputs=None, readable_output=None,
                 raw_response=None, **kwargs):
        if outputs is not None and not outputs_prefix:
            raise ValueError("outputs_prefix is missing")
        self.outputs_prefix = outputs_prefix
        self.outputs_key_field = outputs_key_field
        self.outputs = outputs
        self.readable_output = readable_output
        self.raw_response = raw_response

    def to_context(self):
        context = {}
        if self.outputs is not None:
            key = self.outputs_prefix
            if self.outputs_key_field:
                key += "(val.{0} && val.{0} == obj.{0})".format(self.outputs_key_field)
            context[key] = self.outputs
        return {
            "Type": entryTypes["note"],
            "ContentsFormat": formats["json"],
            "Contents": self.raw_response if self.raw_response is not None else self.outputs,
            "HumanReadable": self.readable_output,
            "EntryContext": context,
        }


def return_results(results):
    if isinstance(results, CommandResults):
        demisto.results(results.to_context())
    elif isinstance(results, str):
        demisto.results({"Type": entryTypes["note"], "ContentsFormat": formats["text"], "Contents": results})
    else:
        demisto.results(results)


def return_error(message, error="", outputs=None):
    demisto.error(str(message))
    if error:
        demisto.error(str(error))
    if demisto.command() in ("fetch-incidents", "long-running-execution", "fetch-indicators"):
        raise Exception(message)
    demisto.results({"Type": entryTypes["error"], "ContentsFormat": formats["text"], "Contents": str(message),
                     "EntryContext": outputs})
    sys.exit(0)
