"""Data staging through Rucio replication rules, with the real ``rucio-clients``.

``stage`` adds one rule per DID at the site's RSE expression; the reference is the rule ids,
comma-separated. ``status`` reads each rule's state and its replica locks, and the files'
sizes, to report bytes: Rucio itself has no byte progress, so progress advances file by file.

rucio-clients is synchronous and keeps process-wide state, which matters when one broker
process talks to several Rucio instances:

- its configuration file is read once per process (``RUCIO_CONFIG`` is global), so this
  adapter passes host, account and credentials to the ``Client`` constructor instead;
- it caches tokens in a per-user file under the temporary directory (fixed at import), so the
  adapter gives each client a private token directory;
- it reports HTTP failures only as exception classes (a 503 while authenticating surfaces as
  ``CannotAuthenticate``), so the adapter records each response's status through a requests
  hook and classifies errors by status first.

Calls run in a worker thread, one at a time per adapter (the client is not thread-safe).
"""

from __future__ import annotations

import contextlib
import queue
import re
import shutil
import tempfile
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from rucio.client import Client
from rucio.common import exception as rucio_errors

from worksteps.site.errors import (
    PermanentSiteError,
    SiteError,
    SiteNotFound,
    TransientSiteError,
    classify_status,
)
from worksteps.site.staging import DID, Replica, StageRequest, StageState, StageStatus
from worksteps.site.threads import run_blocking

__all__ = ["RucioStaging"]

T = TypeVar("T")

SERVICE = "rucio"
_RULE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_NOT_FOUND = (
    rucio_errors.RuleNotFound,
    rucio_errors.DataIdentifierNotFound,
    rucio_errors.RSENotFound,
    rucio_errors.ScopeNotFound,
)
_TRANSIENT = (
    rucio_errors.ServerConnectionException,
    rucio_errors.DatabaseException,
    rucio_errors.ReplicationRuleCreationTemporaryFailed,
)
_PENDING_RULE_STATES = {"WAITING_APPROVAL", "INJECT", "SUSPENDED"}


class _Client(Client):  # type: ignore[misc]
    """``rucio.client.Client`` with a private token cache and a hook on every response."""

    def __init__(self, token_dir: str, answers: _LastAnswer, **kwargs: Any):
        self._token_dir = token_dir
        self.answers = answers
        """Where the HTTP status of each answer goes (rucio-clients' errors do not always say);
        given by the caller so that a failure inside the constructor (it authenticates) is
        classified by its status too."""
        super().__init__(**kwargs)

    def _get_auth_tokens(self) -> tuple[None, str, str, str]:
        suffix = f"for_account_{self.account}"
        return (
            None,
            f"{self._token_dir}/{self.TOKEN_EXP_PREFIX}{suffix}",
            f"{self._token_dir}/{self.TOKEN_PREFIX}{suffix}",
            self._token_dir,
        )

    # The base class assigns ``self.session`` (a requests.Session) in its constructor and again
    # after a 401; a property lets every new session carry the status hook.
    @property
    def session(self) -> requests.Session:
        return self._session

    @session.setter
    def session(self, value: requests.Session) -> None:
        value.hooks["response"].append(lambda response, *_, **__: self._record(response))
        self._session = value

    def _record(self, response: requests.Response) -> None:
        self.answers.status = response.status_code


class _LastAnswer:
    """The HTTP status of the last answer one call received."""

    def __init__(self) -> None:
        self.status: int | None = None


class RucioStaging:
    """:class:`~worksteps.site.staging.DataStaging` through rules at ``rse_expression``.

    ``rse_expression`` is the site's RSE (or an expression selecting it); ``host`` and
    ``auth_host`` are the Rucio server and authentication URLs; ``account``, ``username`` and
    ``password`` the userpass identity; ``activity`` the transfer activity of the rules;
    ``ca_cert`` a CA bundle for https. No network call happens before the first method call.
    """

    def __init__(
        self,
        *,
        host: str,
        account: str,
        username: str,
        password: str,
        rse_expression: str,
        auth_host: str | None = None,
        vo: str = "def",
        activity: str | None = None,
        ca_cert: str | None = None,
        timeout: int = 60,
    ) -> None:
        self.rse_expression = rse_expression
        self.account = account
        self.activity = activity
        self._client_args: dict[str, Any] = {
            "rucio_host": host.rstrip("/"),
            "auth_host": (auth_host or host).rstrip("/"),
            "account": account,
            "auth_type": "userpass",
            "creds": {"username": username, "password": password},
            "vo": vo,
            "ca_cert": ca_cert,
            "timeout": timeout,
        }
        self._token_dir = tempfile.mkdtemp(prefix="worksteps-rucio-")
        weakref.finalize(self, shutil.rmtree, self._token_dir, ignore_errors=True)
        # rucio-clients' Client is not thread-safe: each call takes an idle one (or makes one;
        # they share the token through the token directory), so a hanging call holds up none
        # of the others.
        self._idle: queue.SimpleQueue[_Client] = queue.SimpleQueue()

    # -- DataStaging ----------------------------------------------------------------------

    async def replicas(self, did: DID) -> list[Replica]:
        lines = await self._call("replicas", lambda c: list(c.list_replicas([_did(did)])))
        out = []
        for line in lines:
            file = DID(line["scope"], line["name"])
            for rse, state in sorted(line.get("states", {}).items()):
                if state != "AVAILABLE":
                    continue
                urls = line.get("rses", {}).get(rse) or [None]
                out.append(Replica(file, rse, int(line["bytes"]), urls[0]))
        return out

    async def stage(self, request: StageRequest) -> str:
        return await self._call("stage", lambda c: self._stage(c, request))

    async def find(self, request: StageRequest) -> str | None:
        def lookup(client: _Client) -> str | None:
            ids = []
            for did in request.dids:
                found = self._matching_rule(client, did)
                if found is None:
                    return None
                ids.append(found)
            return ",".join(ids)

        return await self._call("find", lookup)

    async def status(self, ref: str) -> StageStatus:
        ids = _rule_ids(ref, "status")
        return await self._call("status", lambda c: self._status(c, ids))

    async def cancel(self, ref: str) -> bool:
        ids = _rule_ids(ref, "cancel")

        def delete(client: _Client) -> bool:
            for rule_id in ids:
                with contextlib.suppress(rucio_errors.RuleNotFound):
                    client.delete_replication_rule(rule_id)
            return True

        return await self._call("cancel", delete)

    # -- calls (in the worker thread) -----------------------------------------------------

    def _stage(self, client: _Client, request: StageRequest) -> str:
        ids: list[str] = []
        created: list[str] = []
        try:
            for did in request.dids:
                try:
                    new = client.add_replication_rule(
                        [_did(did)],
                        copies=1,
                        rse_expression=self.rse_expression,
                        lifetime=request.lifetime,
                        activity=self.activity,
                        comment=f"worksteps:{request.destination}",
                    )
                    created.extend(new)
                    ids.extend(new)
                except rucio_errors.DuplicateRule:
                    ids.append(self._existing_rule(client, did))
        except Exception:
            for rule_id in created:  # all or nothing: do not leave half a staging behind
                with contextlib.suppress(rucio_errors.RucioException, requests.RequestException):
                    client.delete_replication_rule(rule_id)
            raise
        return ",".join(ids)

    def _matching_rule(self, client: _Client, did: DID) -> str | None:
        """This adapter's rule for ``did`` (same account, RSE and one copy), if any."""
        for rule in client.list_did_rules(did.scope, did.name):
            if (rule["account"], rule["rse_expression"], rule["copies"]) == (
                self.account,
                self.rse_expression,
                1,
            ):
                return str(rule["id"])
        return None

    def _existing_rule(self, client: _Client, did: DID) -> str:
        found = self._matching_rule(client, did)
        if found is not None:
            return found
        raise PermanentSiteError(
            SERVICE, "stage", f"Rucio reports a duplicate rule for {did} but lists none"
        )

    def _status(self, client: _Client, ids: list[str]) -> StageStatus:
        rules = [client.get_replication_rule(rule_id) for rule_id in ids]
        done = total = 0
        rses: set[str] = set()
        for rule, rule_id in zip(rules, ids, strict=True):
            sizes = {
                (f["scope"], f["name"]): int(f["bytes"] or 0)
                for f in client.list_files(rule["scope"], rule["name"])
            }
            for lock in client.list_replica_locks(rule_id):
                size = sizes.get((lock["scope"], lock["name"]), 0)
                total += size
                rses.add(lock["rse"])
                if lock["state"] == "OK":
                    done += size
        states = {rule["state"] for rule in rules}
        ok = sum(int(rule["locks_ok_cnt"]) for rule in rules)
        files = ok + sum(
            int(rule["locks_replicating_cnt"]) + int(rule["locks_stuck_cnt"]) for rule in rules
        )
        where = ",".join(sorted(rses))
        if "STUCK" in states:
            errors = [str(r["error"]) for r in rules if r["state"] == "STUCK" and r["error"]]
            message = "; ".join(errors) or "a replication rule is STUCK"
            return StageStatus(StageState.FAILED, done, total, message, where or None)
        if states & _PENDING_RULE_STATES:
            waiting = ", ".join(sorted(states & _PENDING_RULE_STATES))
            return StageStatus(StageState.PENDING, done, total, f"rule {waiting}", where or None)
        if "REPLICATING" in states:
            message = f"{ok} of {files} files replicated to {where}"
            return StageStatus(StageState.ACTIVE, done, total, message, where or None)
        dids = [{"scope": r["scope"], "name": r["name"]} for r in rules]
        expression = "|".join(sorted(rses)) or self.rse_expression
        urls = [
            url
            for line in client.list_replicas(dids, rse_expression=expression)
            for rse in sorted(rses)
            for url in line.get("rses", {}).get(rse, [])
        ]
        return StageStatus(
            StageState.DONE, done, total, f"{files} files at {where}", where or None, tuple(urls)
        )

    # -- plumbing -------------------------------------------------------------------------

    async def _call(self, operation: str, work: Callable[[_Client], T]) -> T:
        return await run_blocking(self._run, operation, work)

    def _run(self, operation: str, work: Callable[[_Client], T]) -> T:
        answers = _LastAnswer()
        try:
            client = self._idle.get_nowait()
            client.answers = answers
        except queue.Empty:
            client = None
        try:
            if client is None:
                client = _Client(self._token_dir, answers, **self._client_args)
            return work(client)
        except SiteError:
            raise
        except (rucio_errors.RucioException, requests.RequestException) as exc:
            raise _convert(exc, operation, answers.status) from exc
        finally:
            if client is not None:
                self._idle.put(client)


def _did(did: DID) -> dict[str, str]:
    return {"scope": did.scope, "name": did.name}


def _rule_ids(ref: str, operation: str) -> list[str]:
    ids = [part.strip() for part in ref.split(",")]
    if not all(_RULE_ID.match(i) for i in ids):
        raise SiteNotFound(SERVICE, operation, f"{ref!r} is not a list of Rucio rule ids")
    return ids


def _convert(exc: Exception, operation: str, status: int | None) -> SiteError:
    """A Rucio or transport failure as a site error: by HTTP status first, then by class."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, requests.RequestException):
        return TransientSiteError(SERVICE, operation, message)
    if status is not None and (status >= 500 or status == 429):
        return TransientSiteError(SERVICE, operation, message, status)
    if isinstance(exc, _NOT_FOUND):
        return SiteNotFound(SERVICE, operation, message, status)
    if isinstance(exc, _TRANSIENT):
        return TransientSiteError(SERVICE, operation, message, status)
    if type(exc) is rucio_errors.RucioException:  # an error class this client does not know
        cls = classify_status(status) if status else TransientSiteError
        return cls(SERVICE, operation, message, status)
    return PermanentSiteError(SERVICE, operation, message, status)
