from __future__ import annotations

import pytest

from bastion.errors import InvalidParameter, SensitiveDataBlocked
from bastion.policy.data import DEFAULT_ACTIONS, DataPolicy, Located, decide, requested_class
from bastion.protect.detect.finding import Finding


def found(entity: str, where: str = "messages[0].content", score: float = 0.9) -> Located:
    return Located(Finding(entity, 0, 5, score, entity.lower()), where)


@pytest.mark.parametrize(
    ("findings", "default", "requested", "expected_class", "expected_tags"),
    [
        ([], "internal", ("public", ()), "internal", ()),
        ([], "public", ("public", ()), "public", ()),
        ([found("EMAIL_ADDRESS")], "public", ("public", ()), "confidential", ("pii",)),
        ([found("US_SSN")], "internal", ("public", ()), "regulated", ("pii",)),
        ([found("EMAIL_ADDRESS")], "internal", ("regulated", ("phi",)), "regulated", ("phi", "pii")),
        ([found("US_SSN")], "internal", ("public", ()), "regulated", ("pii",)),  # the header cannot lower it
        ([found("EMAIL_ADDRESS", score=0.3)], "internal", ("public", ()), "internal", ()),  # below min score
    ],
)
def test_classification(
    findings: list[Located],
    default: str,
    requested: tuple[str, tuple[str, ...]],
    expected_class: str,
    expected_tags: tuple[str, ...],
) -> None:
    policy = DataPolicy(default_class=default, actions={"US_SSN": "tokenize"})
    decision = decide(policy, findings, requested)
    assert (decision.data_class, decision.tags) == (expected_class, expected_tags)


def test_counts_and_actions_are_recorded_by_type() -> None:
    policy = DataPolicy(actions={"PHONE_NUMBER": "redact"})
    decision = decide(policy, [found("EMAIL_ADDRESS"), found("EMAIL_ADDRESS"), found("PHONE_NUMBER")], ("public", ()))
    assert decision.counts == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1}
    assert decision.actions == {"EMAIL_ADDRESS": "tokenize", "PHONE_NUMBER": "redact"}
    assert decision.to_json()["class"] == "confidential"


def test_defaults_block_secrets_and_cards_and_tokenise_identifiers() -> None:
    assert (DEFAULT_ACTIONS["SECRET"], DEFAULT_ACTIONS["CREDIT_CARD"]) == ("block", "block")
    assert DEFAULT_ACTIONS["EMAIL_ADDRESS"] == DEFAULT_ACTIONS["US_SSN"] == "tokenize"


def test_block_names_types_and_places_never_values() -> None:
    findings = [
        found("SECRET", "messages[1].content"),
        found("CREDIT_CARD", "messages[0].content"),
        found("SECRET", "messages[3].tool_calls[0].function.arguments"),
    ]
    with pytest.raises(SensitiveDataBlocked) as caught:
        decide(DataPolicy(), findings, ("public", ()))
    message = caught.value.message
    assert "CREDIT_CARD in messages[0].content" in message
    assert "SECRET in messages[1].content, messages[3].tool_calls[0].function.arguments" in message
    assert caught.value.code == "sensitive_data_blocked" and caught.value.status == 400


def test_a_project_may_allow_what_is_blocked_by_default() -> None:
    decision = decide(DataPolicy(actions={"SECRET": "allow"}), [found("SECRET")], ("public", ()))
    assert decision.actions == {"SECRET": "allow"}


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        (None, ("public", ())),
        ("regulated", ("regulated", ())),
        ("Confidential; PHI, pii", ("confidential", ("phi", "pii"))),
        ("internal;secret", ("internal", ("secret",))),
    ],
)
def test_requested_class(header: str | None, parsed: tuple[str, tuple[str, ...]]) -> None:
    assert requested_class(header) == parsed


@pytest.mark.parametrize("header", ["top-secret", "regulated; hipaa", "; phi"])
def test_bad_requested_class_is_a_clear_error(header: str) -> None:
    with pytest.raises(InvalidParameter, match="X-Bastion-Data-Class must be one of"):
        requested_class(header)
