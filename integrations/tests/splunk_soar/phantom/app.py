"""Stand-in for phantom.app: the status constants and helpers apps use, and
the classes the Kafka app reaches through `import phantom.app as phantom`."""
from phantom.action_result import ActionResult  # noqa: F401
from phantom.base_connector import BaseConnector  # noqa: F401

APP_SUCCESS = True
APP_ERROR = False


def is_fail(status):
    return not status


def is_success(status):
    return bool(status)
