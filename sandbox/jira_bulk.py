"""Jira Cloud's bulk edit: `POST /rest/api/3/bulk/issues/fields` queues a task that sets the
same values on up to 1,000 issues; `GET /rest/api/3/bulk/queue/{taskId}` reports its progress.

As on Jira Cloud the edit is asynchronous: the POST answers 201 with a task id once the request
is validated, a worker applies the edits one issue after the other (each a changelog entry by
the API user, like a PUT), and the task goes ENQUEUED -> RUNNING -> COMPLETE. Only number
fields are served (`clearableNumberFields`); other field kinds get the 400 Jira gives a field
that is not bulk editable.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.jira_site import NOT_EDITABLE, FieldDef
from sandbox.portfolio import Portfolio
from sandbox.web import HttpError, Response, json_response

MAX_ISSUES = 1000
MAX_FIELDS = 200
KEPT_TASKS = 10_000
"""Finished tasks remembered (Jira keeps them 14 days)."""
PAYLOAD_KEYS = frozenset(
    {"editedFieldsInput", "selectedActions", "selectedIssueIdsOrKeys", "sendBulkNotification"}
)


@dataclass
class _Task:
    id: str
    submitted_by: str
    issues: list[int]
    invalid: int
    values: dict[str, Any]
    created: int
    started: int | None = None
    updated: int | None = None
    status: str = "ENQUEUED"
    processed: list[int] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)

    def progress(self) -> dict[str, Any]:
        done = len(self.processed) + len(self.failed)
        out: dict[str, Any] = {
            "taskId": self.id,
            "status": self.status,
            "progressPercent": 100 * done // max(1, len(self.issues)),
            "submittedBy": {"accountId": self.submitted_by},
            "created": self.created,
        }
        if self.started is not None:
            out["started"] = self.started
        if self.updated is not None:
            out["updated"] = self.updated
        if self.status == "COMPLETE":
            out["processedAccessibleIssues"] = list(self.processed)
            out["failedAccessibleIssues"] = dict(self.failed)
            out["invalidOrInaccessibleIssueCount"] = self.invalid
            out["totalIssueCount"] = len(self.issues) + self.invalid
        return out


def _error(status: int, message: str) -> HttpError:
    """The bulk API's error shape (`BulkOperationErrorResponse`), not the classic one."""
    return HttpError(status, {"errors": [{"message": message}]})


class BulkEdits:
    """The bulk edit tasks of one Jira Cloud site, and the worker that runs them."""

    def __init__(
        self, portfolio: Portfolio, fields: dict[str, FieldDef], account_id: str, author: int
    ):
        self.p = portfolio
        self.fields = fields
        self.account_id = account_id
        self.author = author
        self._tasks: dict[str, _Task] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(10000)
        self._queue: queue.Queue[_Task] = queue.Queue()
        self._worker: threading.Thread | None = None

    def submit(self, body: Any) -> Response:
        if not isinstance(body, dict):
            raise _error(400, "The request body must be a JSON object.")
        unknown = sorted(set(body) - PAYLOAD_KEYS)
        if unknown:
            raise _error(400, f"Unrecognized field: {unknown[0]}")
        wanted = body.get("selectedIssueIdsOrKeys")
        actions = body.get("selectedActions")
        edited = body.get("editedFieldsInput")
        if not isinstance(wanted, list) or not wanted:
            raise _error(400, "selectedIssueIdsOrKeys must list at least one issue.")
        if len(wanted) > MAX_ISSUES:
            raise _error(400, f"A bulk edit can include at most {MAX_ISSUES} issues.")
        if not isinstance(actions, list) or not actions or not isinstance(edited, dict):
            raise _error(400, "selectedActions and editedFieldsInput are required.")
        if len(actions) > MAX_FIELDS:
            raise _error(400, f"A bulk edit can include at most {MAX_FIELDS} fields.")
        notify = body.get("sendBulkNotification")
        if notify is not None and not isinstance(notify, bool):
            raise _error(400, "sendBulkNotification must be a boolean.")
        values = self._values(edited)
        missing = sorted(set(values) - set(actions))
        if missing:
            raise _error(
                400,
                "The following editedFieldInput values are not listed as selectedActions : "
                + ", ".join(missing),
            )
        unset = sorted(set(actions) - set(values))
        if unset:
            raise _error(400, f"No value given in editedFieldsInput for: {', '.join(unset)}")
        issues, invalid = [], 0
        with self.p.lock:
            for ident in dict.fromkeys(str(w) for w in wanted):
                i = self.p.find(ident)
                if i is None or self.p.is_deleted(i):
                    invalid += 1
                else:
                    issues.append(i)
        now = _ms()
        task = _Task(str(next(self._ids)), self.account_id, issues, invalid, values, now)
        with self._lock:
            self._tasks[task.id] = task
            while len(self._tasks) > KEPT_TASKS:
                del self._tasks[next(iter(self._tasks))]
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="jira-bulk", daemon=True)
                self._worker.start()
        self._queue.put(task)
        return json_response(201, {"taskId": task.id})

    def progress(self, task_id: str) -> Response:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise _error(404, f"Task {task_id} not found.")
            return json_response(200, task.progress())

    def _values(self, edited: dict[str, Any]) -> dict[str, Any]:
        """Field id -> portfolio attribute value, from `editedFieldsInput`."""
        values: dict[str, Any] = {}
        for kind, entries in edited.items():
            if kind != "clearableNumberFields":
                raise _error(400, f"The sandbox serves number fields only, not {kind}.")
            if not isinstance(entries, list):
                raise _error(400, f"{kind} must be a list.")
            for entry in entries:
                fid = entry.get("fieldId") if isinstance(entry, dict) else None
                f = self.fields.get(str(fid))
                if f is None or f.kind != "number" or f.id in NOT_EDITABLE or f.attr is None:
                    raise _error(400, f"Field {fid} is not bulk editable.")
                value = entry.get("value")
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float)
                ):
                    raise _error(400, f"The value of {fid} must be a number.")
                values[f.id] = None if value is None else float(value)
        return values

    def _run(self) -> None:
        while True:
            task = self._queue.get()
            with self._lock:
                task.status, task.started = "RUNNING", _ms()
            for i in task.issues:
                changes = {str(self.fields[fid].attr): value for fid, value in task.values.items()}
                with self.p.lock:
                    if self.p.is_deleted(i):
                        outcome = "Issue does not exist or you do not have permission to see it."
                    else:
                        self.p.set_attrs(i, changes, author=self.author)
                        outcome = ""
                    issue_id = self.p.external_id(i)
                with self._lock:
                    if outcome:
                        task.failed[issue_id] = [outcome]
                    else:
                        task.processed.append(int(issue_id))
                    task.updated = _ms()
            with self._lock:
                task.status = "COMPLETE"


def _ms() -> int:
    return int(time.time() * 1000)
