"""Stand-in for phantom.action_result.ActionResult: the methods SOAR apps
call (add_data, update_summary, set_summary, set_status, get_status, ...),
kept as the JSON SOAR shows for an action run."""


class ActionResult(object):
    def __init__(self, param=None):
        if param is not None and not isinstance(param, dict):
            raise TypeError("param must be a dict")
        self._param = dict(param or {})
        self._data = []
        self._summary = {}
        self._status = False
        self._message = ""

    def add_data(self, data):
        self._data.append(data)
        return data

    def get_data(self):
        return self._data

    def get_data_size(self):
        return len(self._data)

    def update_summary(self, summary):
        self._summary.update(summary)
        return self._summary

    def set_summary(self, summary):
        self._summary = dict(summary)
        return self._summary

    def get_summary(self):
        return self._summary

    def update_param(self, param):
        self._param.update(param)

    def get_param(self):
        return self._param

    def set_status(self, status_code, status_message="", exception=None):
        self._status = bool(status_code)
        self._message = status_message
        if exception is not None:
            self._message += " " + str(exception)
        return self._status

    def get_status(self):
        return self._status

    def is_success(self):
        return self._status

    def is_fail(self):
        return not self._status

    def get_message(self):
        return self._message

    def to_json(self):
        return {
            "status": "success" if self._status else "failed",
            "message": self._message,
            "parameter": self._param,
            "data": self._data,
            "summary": self._summary,
        }
