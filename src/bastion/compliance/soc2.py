"""The SOC 2 evidence pack: controls CC6.1, CC6.2, CC6.3, CC7.2, CC8.1 and CC9.1, each mapped to the live
configuration, the store and the audit log (counts, example entry sequence numbers, and the checkpoint
they can be proved against).

Every control says what Bastion evidences automatically and what it does not cover: evidence is not
a verdict, and the parts of a control that live outside Bastion (an identity provider, HR, code
review, vendor contracts) are named so that nobody mistakes this pack for the whole audit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bastion.compliance.report import EXAMPLES, Fact, Section
from bastion.compliance.source import finish
from bastion.identity import rbac
from bastion.identity.model import ORG_ROLES, ROLE_PERMISSIONS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from bastion.compliance.report import Query, Report
    from bastion.compliance.source import Entry, Source
    from bastion.identity.keys import KeyRecord
    from bastion.identity.model import Member, ServiceAccount

AUTH_REASONS = ("invalid_api_key", "key_expired", "key_revoked")
PERMISSION_REASONS = ("permission_denied", "model_not_allowed")


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence: where it comes from, what it shows, and entries that record it."""

    source: str  # configuration | store | audit log | code
    item: str
    value: Any
    examples: tuple[int, ...] = ()


@dataclass(frozen=True)
class ControlRow:
    control: str
    title: str
    evidence_items: int
    entries_cited: int


@dataclass
class _Log:
    """One pass over the period's entries: counts and first examples by action, reason and kind of change.

    ``counts`` is keyed by action, by ``reason:<code>`` and by ``member.role_change`` (an update that
    changed a member's organisation role).
    """

    entries: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)
    providers: Counter[str] = field(default_factory=Counter)
    actors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=dict)
    keys_revoked_at_offboarding: int = 0

    def add(self, entry: Entry) -> None:
        self.entries += 1
        self._mark(entry.action, entry.seq)
        if entry.action in ("request.refused", "request.failed"):
            reason = str(entry.fields.get("reason") or "unknown")
            self.reasons[reason] += 1
            self._mark("reason:" + reason, entry.seq)
        elif entry.action == "request.forwarded":
            self.providers[str(entry.fields.get("provider"))] += 1
        elif not entry.action.startswith("request."):
            self._change(entry)

    def _change(self, entry: Entry) -> None:
        self.changes[entry.action] += 1
        self.actors[entry.actor.split(":", 1)[0]] += 1
        self._example("change", entry.seq)
        before, after = entry.fields.get("before") or {}, entry.fields.get("after") or {}
        if entry.action == "member.update" and before.get("role") != after.get("role"):
            self._mark("member.role_change", entry.seq)
        if entry.action == "member.remove":
            self.keys_revoked_at_offboarding += int(after.get("keys_revoked") or 0)

    def _mark(self, key: str, seq: int) -> None:
        self.counts[key] += 1
        self._example(key, seq)

    def _example(self, key: str, seq: int) -> None:
        found = self.examples.setdefault(key, [])
        if len(found) < EXAMPLES:
            found.append(seq)

    def count(self, item: str, *keys: str) -> Evidence:
        """Log evidence for actions or ``reason:`` keys: their total and the first entries among them."""
        seqs = sorted(seq for key in keys for seq in self.examples.get(key, []))[:EXAMPLES]
        return Evidence("audit log", item, sum(self.counts[key] for key in keys), tuple(seqs))


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole}"


def _tally(counter: Counter[str]) -> tuple[str, ...]:
    return tuple(f"{name}={count}" for name, count in sorted(counter.items()))


@dataclass(frozen=True)
class _State:
    """What the controls read besides the log: the scope's organisation as of now."""

    source: Source
    query: Query
    log: _Log

    def members(self) -> list[Member]:
        return self.source.org.members(self.query.project)

    def accounts(self) -> list[ServiceAccount]:
        return self.source.org.service_accounts(self.query.project)

    def usable_keys(self) -> list[KeyRecord]:
        now = self.source.now()
        keys = self.source.keys.list_keys(self.query.project)
        return [k for k in keys if k.effective_status(now) in ("active", "rotating")]


def cc6_1(state: _State) -> list[Evidence]:
    members, accounts, keys = state.members(), state.accounts(), state.usable_keys()
    hashed = sum(len(k.hash) == 64 for k in state.source.keys.list_keys(state.query.project))
    return [
        Evidence("store", "API keys stored only as HMAC-SHA-256 hashes", _share(hashed, hashed)),
        Evidence(
            "store", "usable keys with an expiry date", _share(sum(k.expires_at is not None for k in keys), len(keys))
        ),
        Evidence("code", "admin API permission matrix (see the access report)", f"{len(rbac.MATRIX)} actions"),
        Evidence(
            "store", "members with an IP allowlist", _share(sum(bool(m.ip_allowlist) for m in members), len(members))
        ),
        Evidence(
            "store",
            "service accounts with an IP allowlist",
            _share(sum(bool(a.ip_allowlist) for a in accounts), len(accounts)),
        ),
        state.log.count("requests refused: unknown, expired or revoked key", *(f"reason:{r}" for r in AUTH_REASONS)),
        state.log.count("requests refused: source address not allowed", "reason:ip_not_allowed"),
        state.log.count(
            "requests refused: permission or model not allowed", *(f"reason:{r}" for r in PERMISSION_REASONS)
        ),
    ]


def cc6_2(state: _State) -> list[Evidence]:
    invites = state.source.org.invites() if state.query.project is None else []
    now = state.source.now()
    return [
        Evidence("store", "current members", len(state.members())),
        state.log.count("members added (member.add)", "member.add"),
        state.log.count("members removed (member.remove)", "member.remove"),
        Evidence("audit log", "keys revoked when members were removed", state.log.keys_revoked_at_offboarding),
        state.log.count("invites created or revoked", "invite.create", "invite.revoke"),
        Evidence("store", "invites pending", sum(i.status(now) == "pending" for i in invites)),
    ]


def cc6_3(state: _State) -> list[Evidence]:
    members, accounts = state.members(), state.accounts()
    roles = Counter(m.role for m in members)
    grants = tuple(f"{role}: {' '.join(sorted(p))}" for role, p in ROLE_PERMISSIONS.items())
    narrow = sum(len(a.permissions) < len(ROLE_PERMISSIONS["admin"]) for a in accounts)
    return [
        state.log.count("organisation role changes (member.update)", "member.role_change"),
        state.log.count("member and service account updates", "member.update", "service_account.update"),
        Evidence("store", "members by organisation role", tuple(f"{r}={roles[r]}" for r in ORG_ROLES)),
        Evidence("code", "API permissions by project role", grants),
        Evidence("store", "service accounts limited to fewer than all API permissions", _share(narrow, len(accounts))),
    ]


def cc7_2(state: _State) -> list[Evidence]:
    projects = [p for p in state.source.org.projects() if state.query.project in (None, p.name)]
    limited = sum(bool(p.limits.rpm or p.limits.tpm or p.limits.daily_tokens) for p in projects)
    log = state.source.log_reference()
    return [
        state.log.count("requests completed", "request.completed"),
        state.log.count("requests refused or failed", "request.refused", "request.failed"),
        Evidence("audit log", "refusals and failures by reason", _tally(state.log.reasons)),
        state.log.count("requests refused by a rate limit", "reason:rate_limit_exceeded"),
        Evidence("configuration", "projects with rate limits", _share(limited, len(projects))),
        Evidence("audit log", "entries in the log", log.head_size),
        Evidence("audit log", f"latest reference ({log.source})", f"size {log.size}, root {log.root}"),
    ]


def cc8_1(state: _State) -> list[Evidence]:
    log = state.log
    recorded = sum(log.changes.values())
    return [
        Evidence(
            "audit log", "changes recorded with before and after", recorded, tuple(log.examples.get("change", []))
        ),
        Evidence("audit log", "changes by action", _tally(log.changes)),
        Evidence("audit log", "changes by kind of actor", _tally(log.actors)),
    ]


def cc9_1(state: _State) -> list[Evidence]:
    rows = [
        Evidence(
            "configuration",
            f"provider {p.name}",
            f"kind {p.kind}, host {urlsplit(p.base_url).hostname if p.base_url else 'local'}, "
            f"models {', '.join(sorted(p.models))}, key from {'$' + p.api_key_env if p.api_key_env else 'none'}",
        )
        for p in state.source.providers
    ]
    return [*rows, Evidence("audit log", "requests forwarded by provider", _tally(state.log.providers))]


@dataclass(frozen=True)
class Control:
    """A control: its title, the evidence Bastion gathers for it, and what that evidence does not cover."""

    title: str
    evidence: Callable[[_State], list[Evidence]]
    automated: str
    not_covered: str


CONTROLS: dict[str, Control] = {
    "CC6.1": Control(
        "Logical access security",
        cc6_1,
        "Keys hashed at rest, expiry, the admin permission matrix, IP allowlists, and every refused key, "
        "address and permission in the audit log.",
        "Single sign-on and MFA at the identity provider, physical access, how keys are handed to "
        "applications, and whether each allowlist is as narrow as it should be.",
    ),
    "CC6.2": Control(
        "Registration and removal of users",
        cc6_2,
        "Every member added or removed and every invite, with the keys revoked on removal, in the audit log.",
        "The HR joiner and leaver process and its timeliness; compare leavers with the member.remove entries.",
    ),
    "CC6.3": Control(
        "Role changes and least privilege",
        cc6_3,
        "Role changes from the audit log, the role and permission matrices, and service account scopes.",
        "Periodic access reviews and their sign-off (the access report is their input), segregation of duties.",
    ),
    "CC7.2": Control(
        "Monitoring of the system",
        cc7_2,
        "Requests, refusals and failures by reason, rate-limit refusals, rate limits configured, "
        "and the size and latest reference of the tamper-evident log.",
        "Alerting on violations and who responds to them; retention of exported logs outside Bastion.",
    ),
    "CC8.1": Control(
        "Change management",
        cc8_1,
        "Every change to the organisation (CLI, apply, admin API) with actor, before and after, in the audit log.",
        "Approval and review of changes to bastion.yaml and to Bastion itself (pull requests, tickets, deployment).",
    ),
    "CC9.1": Control(
        "Vendor and business-partner risk",
        cc9_1,
        "The upstream providers configured and the requests forwarded to each.",
        "Vendor due diligence: contracts, DPAs, the vendors' own SOC 2 reports and data-residency terms.",
    ),
}


def _section(code: str, control: Control, evidence: list[Evidence]) -> Section:
    notes = (f"Automated: {control.automated}", f"Not covered: {control.not_covered}")
    return Section.of(code.lower().replace(".", "_"), f"{code} {control.title}", Evidence, evidence, notes=notes)


def _overview(found: Iterable[tuple[str, Control, list[Evidence]]]) -> Section:
    rows = [ControlRow(code, c.title, len(ev), sum(len(e.examples) for e in ev)) for code, c, ev in found]
    return Section.of("controls", "Controls", ControlRow, rows)


def build(source: Source, query: Query) -> Report:
    """Gather the period's log evidence in one pass, then each control's evidence from it and the store."""
    log = _Log()
    for entry in source.entries(query):
        log.add(entry)
    state = _State(source, query, log)
    found = [(code, control, control.evidence(state)) for code, control in CONTROLS.items()]
    sections = [_overview(found), *(_section(code, control, ev) for code, control, ev in found)]
    summary = [
        Fact("controls", len(CONTROLS)),
        Fact("evidence_items", sum(len(ev) for _, _, ev in found)),
        Fact("entries_in_period", log.entries),
    ]
    return finish(source, query, "soc2", "SOC 2 evidence pack", summary, sections)
