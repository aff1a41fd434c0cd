"""Data policy: classify a request from its findings and decide, per finding, allow, tokenise, redact or block.

Pure: findings in, a decision out. Classes are ordered ``public < internal < confidential < regulated``;
a request's class is the highest of its project's default, what its findings imply, and what the
client asks for with ``X-Bastion-Data-Class`` (which may raise the class, never lower it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bastion.errors import InvalidParameter, SensitiveDataBlocked

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from bastion.config import DataPolicyConfig
    from bastion.protect.detect.finding import Finding

CLASSES = ("public", "internal", "confidential", "regulated")
TAGS = ("pii", "phi", "pci", "secret")
ACTIONS = ("allow", "tokenize", "redact", "block")

# What each entity type says about the data: (the class it implies, its tag).
_PERSONAL = ("confidential", "pii")
_NATIONAL = ("regulated", "pii")
_PAYMENT = ("regulated", "pci")
ENTITY_CLASS: dict[str, tuple[str, str]] = {
    "EMAIL_ADDRESS": _PERSONAL,
    "PHONE_NUMBER": _PERSONAL,
    "IP_ADDRESS": _PERSONAL,
    "PERSON": _PERSONAL,
    "LOCATION": _PERSONAL,
    "STREET_ADDRESS": _PERSONAL,
    "ORGANIZATION": ("internal", "pii"),
    "DATE_OF_BIRTH": _PERSONAL,
    "US_SSN": _NATIONAL,
    "UK_NINO": _NATIONAL,
    "DE_TAX_ID": _NATIONAL,
    "FR_NIR": _NATIONAL,
    "ES_NIF": _NATIONAL,
    "ES_NIE": _NATIONAL,
    "IT_FISCAL_CODE": _NATIONAL,
    "NL_BSN": _NATIONAL,
    "IN_AADHAAR": _NATIONAL,
    "CREDIT_CARD": _PAYMENT,
    "IBAN_CODE": _PAYMENT,
    "US_BANK_ROUTING": _PAYMENT,
    "SECRET": ("confidential", "secret"),
}

# The default action per type when a project names none: credentials and card numbers never leave;
# personal identifiers are tokenised (and restored in the answer); an organisation name passes.
DEFAULT_ACTIONS: dict[str, str] = {
    **dict.fromkeys(ENTITY_CLASS, "tokenize"),
    "SECRET": "block",
    "CREDIT_CARD": "block",
    "ORGANIZATION": "allow",
}
DEFAULT_MIN_SCORE = 0.5


@dataclass(frozen=True)
class DataPolicy:
    """A project's ``data_policy`` (see ``config.DataPolicyConfig``), as the request path reads it."""

    default_class: str = "internal"
    actions: Mapping[str, str] = field(default_factory=dict)
    min_scores: Mapping[str, float] = field(default_factory=dict)
    ner: bool = False
    mask_unsupplied: bool = True
    output_actions: Mapping[str, str] = field(default_factory=dict)
    persist_vault: bool = False
    vault_ttl: timedelta = timedelta(hours=24)
    require: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict, compare=False)  # as configured, for to_json

    @classmethod
    def of(cls, config: DataPolicyConfig) -> DataPolicy:
        return cls(
            default_class=config.default_class,
            actions=dict(config.entities),
            min_scores=dict(config.min_score),
            ner=config.ner,
            mask_unsupplied=config.output.mask_unsupplied,
            output_actions=dict(config.output.entities),
            persist_vault=config.vault.persist,
            vault_ttl=config.vault.ttl,
            require={key: tuple(types) for key, types in config.require.items()},
            source=config.model_dump(mode="json", exclude_defaults=True),
        )

    def to_json(self) -> dict[str, Any]:
        """What was configured (defaults left out): the admin API's and the admin events' shape."""
        return dict(self.source)

    def action(self, entity: str) -> str:
        return self.actions.get(entity) or DEFAULT_ACTIONS.get(entity, "tokenize")

    def counts(self, finding: Finding) -> bool:
        return finding.score >= self.min_scores.get(finding.type, DEFAULT_MIN_SCORE)


@dataclass(frozen=True)
class Located:
    """A finding and where it is in the request (``messages[2].content``, ``input[0]`` ...)."""

    finding: Finding
    where: str


@dataclass(frozen=True)
class Decision:
    data_class: str
    tags: tuple[str, ...]
    counts: dict[str, int]  # findings by type that the policy counted
    actions: dict[str, str]  # type -> action taken
    blocked: tuple[Located, ...] = ()  # findings whose type the policy blocks

    def to_json(self) -> dict[str, object]:
        return {"class": self.data_class, "tags": list(self.tags), "findings": self.counts, "actions": self.actions}

    def refusal(self) -> SensitiveDataBlocked | None:
        """The error to answer with when the policy blocks something in the request."""
        if not self.blocked:
            return None
        return SensitiveDataBlocked(_blocked_message(list(self.blocked)), param=self.blocked[0].where)


def requested_class(header: str | None) -> tuple[str, tuple[str, ...]]:
    """Parse ``X-Bastion-Data-Class: confidential`` or ``regulated; phi, pii`` into a class and tags."""
    if not header:
        return "public", ()
    name, _, rest = header.partition(";")
    name = name.strip().lower()
    tags = tuple(sorted({tag.strip().lower() for tag in rest.replace(",", " ").split() if tag.strip()}))
    if name not in CLASSES or any(tag not in TAGS for tag in tags):
        raise InvalidParameter(
            f"X-Bastion-Data-Class must be one of {', '.join(CLASSES)}, optionally followed by '; ' and tags "
            f"from {', '.join(TAGS)} (e.g. 'regulated; phi').",
            param="X-Bastion-Data-Class",
        )
    return name, tags


def decide(policy: DataPolicy, found: Iterable[Located], requested: tuple[str, tuple[str, ...]]) -> Decision:
    """Classify the request and choose each type's action; raise :class:`SensitiveDataBlocked` on ``block``."""
    decision = classify(policy, found, requested)
    refusal = decision.refusal()
    if refusal is not None:
        raise refusal
    return decision


def classify(policy: DataPolicy, found: Iterable[Located], requested: tuple[str, tuple[str, ...]]) -> Decision:
    """The request's class, tags, finding counts and actions, with what the policy blocks (not raised)."""
    counted = [item for item in found if policy.counts(item.finding)]
    blocked = tuple(item for item in counted if policy.action(item.finding.type) == "block")
    levels = [CLASSES.index(policy.default_class), CLASSES.index(requested[0])]
    tags = set(requested[1])
    for item in counted:
        implied, tag = ENTITY_CLASS.get(item.finding.type, ("confidential", "pii"))
        levels.append(CLASSES.index(implied))
        tags.add(tag)
    counts = dict(sorted(Counter(item.finding.type for item in counted).items()))
    actions = {entity: policy.action(entity) for entity in counts}
    return Decision(CLASSES[max(levels)], tuple(sorted(tags)), counts, actions, blocked)


def _blocked_message(blocked: list[Located]) -> str:
    """Names the types and where they are; never the values."""
    places: dict[str, list[str]] = {}
    for item in blocked:
        places.setdefault(item.finding.type, [])
        if item.where not in places[item.finding.type]:
            places[item.finding.type].append(item.where)
    described = "; ".join(f"{entity} in {', '.join(where)}" for entity, where in sorted(places.items()))
    return (
        f"The request contains data this project's policy blocks ({described}); remove it or ask an admin to "
        "change the project's data_policy."
    )
