"""Which providers may take a request: the project's residencies and the vendor attestations its data needs.

Pure: configuration, the request's class and tags and today's date in; the eligible providers out, and
for each one left out the rule that excluded it, in words an operator can act on. Health only ever
removes providers from this set; nothing adds one back across a residency or attestation boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bastion.errors import NoEligibleUpstream
from bastion.policy.data import CLASSES

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import date

    from bastion.config import ProviderConfig, VendorConfig

EXPIRY_NOTICE = timedelta(days=30)
CIRCUITS = {"open": "circuit open", "half_open": "circuit half-open, its probe is in flight"}


@dataclass(frozen=True, slots=True)
class Attestation:
    """One of a vendor's positions (``zdr``, ``dpa``, ``baa`` ...), valid up to and including ``expires`` (UTC)."""

    type: str
    expires: date

    def valid_on(self, today: date) -> bool:
        return today <= self.expires


@dataclass(frozen=True, slots=True)
class Expiry:
    """An attestation that has lapsed or soon will: what /readyz and ``bastion report vendors`` warn about."""

    vendor: str
    type: str
    expires: date
    days_left: int  # negative once expired
    expired: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "type": self.type,
            "expires": self.expires.isoformat(),
            "days_left": self.days_left,
            "expired": self.expired,
        }


@dataclass(frozen=True, slots=True)
class Vendor:
    """The legal entity behind providers; a provider holds exactly its vendor's attestations."""

    name: str
    attestations: tuple[Attestation, ...] = ()

    def holds(self, kind: str, today: date) -> bool:
        return any(a.type == kind and a.valid_on(today) for a in self.attestations)

    def latest(self, kind: str) -> Attestation | None:
        """The attestation of this type that runs longest (a renewal supersedes the one it replaces)."""
        return max((a for a in self.attestations if a.type == kind), key=lambda a: a.expires, default=None)

    def expiring(self, today: date, within: timedelta = EXPIRY_NOTICE) -> list[Expiry]:
        """Each type whose latest attestation expired or expires within ``within`` of ``today``."""
        found = []
        for kind in sorted({a.type for a in self.attestations}):
            latest = self.latest(kind)
            if latest is not None and latest.expires - today <= within:
                left = (latest.expires - today).days
                found.append(Expiry(self.name, kind, latest.expires, left, not latest.valid_on(today)))
        return found


def vendors_from(configs: Iterable[VendorConfig]) -> dict[str, Vendor]:
    """The configured vendors by name."""
    return {
        config.name: Vendor(config.name, tuple(Attestation(a.type, a.expires) for a in config.attestations))
        for config in configs
    }


def expiring(vendors: Iterable[Vendor], today: date, within: timedelta = EXPIRY_NOTICE) -> list[Expiry]:
    """Every vendor's lapsed and soon-lapsing attestations, soonest first."""
    found = [expiry for vendor in vendors for expiry in vendor.expiring(today, within)]
    return sorted(found, key=lambda e: (e.expires, e.vendor, e.type))


@dataclass(frozen=True, slots=True)
class Requirement:
    """Where a request's data may go (``residencies``: None for anywhere) and what its vendor must attest.

    ``because`` names, for each attestation, the class or tag rules of the project that ask for it.
    """

    residencies: tuple[str, ...] | None = None
    attestations: tuple[str, ...] = ()
    data_class: str = "public"
    tags: tuple[str, ...] = ()
    because: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "residency": None if self.residencies is None else list(self.residencies),
            "attestations": list(self.attestations),
            "class": self.data_class,
            "tags": list(self.tags),
            "because": {kind: list(rules) for kind, rules in self.because.items()},
        }

    def data(self) -> str:
        """The data's class and tags as the ``X-Bastion-Data-Class`` header writes them: ``regulated; pii``."""
        return f"{self.data_class}; {', '.join(self.tags)}" if self.tags else self.data_class


def requirement(
    residency: Sequence[str] | None, require: Mapping[str, Sequence[str]], data_class: str, tags: Iterable[str]
) -> Requirement:
    """What a request of ``data_class`` with ``tags`` needs under a project's residency and ``require`` map.

    A class's requirement binds every higher class too: ``require: {confidential: [dpa]}`` also applies
    to regulated data, so raising a request's class can only add requirements. Tags add their own.
    """
    level = CLASSES.index(data_class)
    tags = tuple(sorted(set(tags)))
    rules = [*reversed(CLASSES[: level + 1]), *tags]  # the data's own class first, for the message's order
    because: dict[str, tuple[str, ...]] = {}
    for rule in rules:
        for kind in require.get(rule, ()):
            because[kind] = (*because.get(kind, ()), rule)
    allowed = None if residency is None else tuple(residency)
    return Requirement(allowed, tuple(because), data_class, tags, because)


@dataclass(frozen=True, slots=True)
class Lacking:
    """A required attestation a provider does not hold; ``expired`` is when its last one lapsed, if it had one."""

    type: str
    expired: date | None = None

    def text(self) -> str:
        return f"{self.type} (expired {self.expired.isoformat()})" if self.expired else self.type


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Why one provider may not take the request: residency, attestations, or (if it may) its circuit."""

    provider: str
    residence: str | None = None
    wrong_residency: bool = False
    lacking: tuple[Lacking, ...] = ()
    circuit: str | None = None

    def rules(self) -> list[str]:
        named = {"residency": self.wrong_residency, "attestation": bool(self.lacking), "circuit": bool(self.circuit)}
        return [rule for rule, applies in named.items() if applies]

    def clause(self) -> str:
        """``openai-eu lacks dpa (expired 2026-10-01)``: one part of the refusal message."""
        parts = []
        if self.wrong_residency:
            parts.append(f"is in residency {self.residence}" if self.residence else "has no declared residency")
        if self.lacking:
            parts.append(f"lacks {', '.join(item.text() for item in self.lacking)}")
        if self.circuit:
            parts.append(f"is unhealthy ({CIRCUITS.get(self.circuit, 'circuit ' + self.circuit)})")
        return f"{self.provider} {' and '.join(parts)}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"provider": self.provider, "rules": self.rules()}
        if self.wrong_residency:
            out["residency"] = self.residence
        if self.lacking:
            out["lacks"] = [
                {"type": i.type, "expired": i.expired.isoformat() if i.expired else None} for i in self.lacking
            ]
        if self.circuit:
            out["circuit"] = self.circuit
        return out


@dataclass(frozen=True, slots=True)
class Eligibility:
    """The providers that may take a request, in the order given, and why each of the others may not."""

    requirement: Requirement
    eligible: tuple[ProviderConfig, ...]
    excluded: tuple[Exclusion, ...]

    def summary(self) -> str:
        """``no healthy provider in residency eu holds zdr, dpa``: the refusal in one line, for logs and metrics."""
        req = self.requirement
        healthy = "healthy " if any(e.rules() == ["circuit"] for e in self.excluded) else ""
        where = "" if req.residencies is None else f" in {_residency(req.residencies, ' or ', 'an allowed residency')}"
        holds = f" holds {', '.join(req.attestations)}" if req.attestations else ""
        return f"no {healthy}provider{where + holds or ' is available'}"

    def message(self, model: str, project: str) -> str:
        """The refusal a client sees: the requirement, then each provider and the rule that excluded it."""
        clauses = [clause for clause in [_required(self.requirement, project)] if clause]
        clauses += [exclusion.clause() for exclusion in self.excluded]
        return f"No provider may take this request for model '{model}' ({self.summary()}): {'; '.join(clauses)}."

    def refusal(self, model: str, project: str) -> NoEligibleUpstream:
        return NoEligibleUpstream(self.message(model, project))

    def to_json(self) -> dict[str, Any]:
        return {
            "requirement": self.requirement.to_json(),
            "eligible": [provider.name for provider in self.eligible],
            "excluded": [exclusion.to_json() for exclusion in self.excluded],
        }


def eligibility(
    providers: Iterable[ProviderConfig],
    requirement: Requirement,
    vendors: Mapping[str, Vendor],
    today: date,
    circuits: Mapping[str, str] | None = None,
) -> Eligibility:
    """Split ``providers`` into those that may take the request and those that may not, with reasons.

    A provider is eligible when it sits in an allowed residency (one whose residence is unknown only
    when the project allows any), its vendor holds every required attestation valid on ``today``
    (a provider without a vendor holds none), and it is not listed in ``circuits`` (provider → the state
    of a circuit that will not admit a request now).
    """
    eligible, excluded = [], []
    for provider in providers:
        exclusion = _exclusion(provider, requirement, vendors, today, circuits or {})
        if exclusion is None:
            eligible.append(provider)
        else:
            excluded.append(exclusion)
    return Eligibility(requirement, tuple(eligible), tuple(excluded))


def _exclusion(
    provider: ProviderConfig, req: Requirement, vendors: Mapping[str, Vendor], today: date, circuits: Mapping[str, str]
) -> Exclusion | None:
    residence = provider.residence
    wrong = req.residencies is not None and residence not in req.residencies
    vendor = vendors.get(provider.vendor) if provider.vendor else None
    lacking = tuple(_lacking(vendor, kind) for kind in req.attestations if not (vendor and vendor.holds(kind, today)))
    if wrong or lacking:
        return Exclusion(provider.name, residence, wrong, lacking)
    if provider.name in circuits:
        return Exclusion(provider.name, residence, circuit=circuits[provider.name])
    return None


def _lacking(vendor: Vendor | None, kind: str) -> Lacking:
    latest = vendor.latest(kind) if vendor else None
    return Lacking(kind, latest.expires if latest else None)


def _required(req: Requirement, project: str) -> str:
    where = (
        ""
        if req.residencies is None
        else f"project '{project}' allows {_residency(req.residencies, ' and ', 'no residency')}"
    )
    needs = ", ".join(req.attestations)
    if where and needs:
        return f"{where} and the data ({req.data()}) requires {needs}"
    if needs:
        return f"project '{project}' requires {needs} for this data ({req.data()})"
    return where


def _residency(allowed: Sequence[str], last: str, none: str) -> str:
    """``residency eu``, ``residency eu or uk``; an empty list allows nowhere, so nothing is eligible."""
    if not allowed:
        return none
    head = ", ".join(allowed[:-1])
    return f"residency {head}{last}{allowed[-1]}" if head else f"residency {allowed[0]}"
