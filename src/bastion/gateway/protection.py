"""Steps 5 to 7 of the request path (inspect, decide, protect) and step 10 (the answer), for one request.

``Protection.inspect`` finds sensitive values in every part of the request (``parts``), classifies it and
applies the project's ``data_policy``: the caller gets ``Inspected``, which says what was decided, which body
goes to the upstream (placeholders and redactions in place of the values), and how to restore and mask the
answer, whole or streamed. Detection of long texts, and the NER tier, run in a worker thread so that the event
loop keeps serving other requests.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.errors import Unavailable
from bastion.gateway.parts import Part, parts, replaced
from bastion.policy.data import ENTITY_CLASS, Located, classify
from bastion.protect.answer import protect_completion
from bastion.protect.output import OutputMasker
from bastion.protect.stream import ChunkTransformer
from bastion.protect.tokenize import Vault, protect_all

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from bastion.identity.model import Project
    from bastion.policy.data import DataPolicy, Decision
    from bastion.protect.detect import Detector, Finding
    from bastion.protect.detect.engine import Validations
    from bastion.protect.detect.tiers import Detection
    from bastion.protect.vaults import Stored, VaultStore

log = logging.getLogger(__name__)
OFFLOAD_CHARS = 32 * 1024  # a request with more text than this is scanned in a worker thread
SAVE_ATTEMPTS = 8  # tries to add values to a persisted vault that other replicas are writing too


@dataclass(slots=True)
class Inspected:
    """What steps 5 to 7 decided for one request, and what the answer needs from them."""

    decision: Decision
    body: dict[str, Any] | None  # the body to forward, when protection changed it
    vault: Vault  # the placeholders this request may restore
    masker: OutputMasker | None  # masks unsupplied values in the answer; None when the policy masks nothing

    def as_sent(self) -> Inspected:
        """The same, restoring nothing: for the ``echo`` model, whose answer is what left for the upstream."""
        return Inspected(self.decision, self.body, Vault(), self.masker)

    @property
    def rewrites_answer(self) -> bool:
        return len(self.vault) > 0 or self.masker is not None

    def reply(self, body: bytes) -> bytes:
        """A whole chat completion, restored and masked."""
        return protect_completion(body, self.vault, self.masker) if self.rewrites_answer else body

    async def events(self, events: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
        """A streamed chat completion's events, restored and masked.

        When the upstream breaks off, the text held back is dropped rather than released unfinished: a
        half-arrived value cannot be judged, and the client gets an error event for the stream anyway.
        """
        transformer = ChunkTransformer(self.vault, self.masker.stream if self.masker else None)
        try:
            async for event in events:
                for out in transformer.feed(event):
                    yield out
        finally:
            await events.aclose()
        for out in transformer.close():
            yield out


class Protection:
    def __init__(self, detection: Detection, *, vaults: VaultStore | None = None) -> None:
        self._detection = detection
        self._detector = detection.detector
        self._vaults = vaults
        self._locks: dict[int, asyncio.Lock] = {}

    async def inspect(
        self, endpoint: str, body: dict[str, Any], project: Project, requested: tuple[str, tuple[str, ...]]
    ) -> Inspected:
        """Classify and protect the request; the decision's ``refusal()`` says whether to refuse it instead."""
        policy = project.data_policy
        found = parts(endpoint, body)
        memo: Validations = {}  # the answer repeats the prompt's values: each is validated once per request
        findings = await self._scan([part.text for part in found], ner=policy.ner, memo=memo)
        counted = [[finding for finding in part if policy.counts(finding)] for part in findings]
        decision = classify(
            policy,
            [Located(f, part.where) for part, part_found in zip(found, counted, strict=True) for f in part_found],
            requested,
        )
        if decision.blocked:
            return Inspected(decision, None, Vault(), None)  # refused: there will be no answer
        supplied = [
            part.text[f.start : f.end] for part, part_found in zip(found, findings, strict=True) for f in part_found
        ]
        masker = _masker(self._detector, policy, supplied, memo) if endpoint == "chat.completions" else None
        if not any(policy.action(t) in ("tokenize", "redact") for t in decision.counts):
            return Inspected(decision, None, Vault(), masker)
        texts, vault = await self._protect(project, found, counted)
        changed = {part.path: text for part, text in zip(found, texts, strict=True) if text != part.text}
        return Inspected(decision, replaced(body, changed), vault.used(), masker)

    async def _scan(self, texts: list[str], *, ner: bool, memo: Validations) -> list[list[Finding]]:
        if not ner and sum(map(len, texts)) <= OFFLOAD_CHARS:
            return self._detector.scan_many(texts, memo)
        return await asyncio.to_thread(self._detection.detect_texts, texts, ner=ner, memo=memo)

    async def _protect(
        self, project: Project, found: list[Part], counted: list[list[Finding]]
    ) -> tuple[list[str], Vault]:
        policy = project.data_policy
        pairs = [(part.text, part_found) for part, part_found in zip(found, counted, strict=True)]
        if self._vaults is None or not policy.persist_vault:
            vault = Vault()
            return protect_all(pairs, vault, policy.action), vault
        async with self._locks.setdefault(project.id, asyncio.Lock()):  # one writer per project per process
            return await self._persisted(project, pairs, self._vaults)

    async def _persisted(
        self, project: Project, pairs: list[tuple[str, list[Finding]]], vaults: VaultStore
    ) -> tuple[list[str], Vault]:
        """Protect with the project's persisted vault, adding new values to it by compare-and-set."""
        policy = project.data_policy
        stored: Stored = await asyncio.to_thread(vaults.current, project.id)
        for _ in range(SAVE_ATTEMPTS):
            vault = stored.start()
            texts = protect_all(pairs, vault, policy.action)
            if not vault.added() or await asyncio.to_thread(vaults.save, project.id, stored, vault, policy.vault_ttl):
                return texts, vault
            stored = await asyncio.to_thread(vaults.reload, project.id)
        log.warning("project %s: its placeholder vault kept changing under this request", project.name)
        raise Unavailable(
            "The project's placeholder vault is being changed by other gateway processes faster than this request "
            "could join it; try again."
        )


def _masker(detector: Detector, policy: DataPolicy, supplied: list[str], memo: Validations) -> OutputMasker | None:
    """The answer's masker: types the output policy names take its action; the others are masked when
    ``mask_unsupplied`` is on, unless the input policy lets the type through (``allow``)."""
    actions: dict[str, Any] = {}
    for entity in ENTITY_CLASS:
        default = "redact" if policy.mask_unsupplied and policy.action(entity) != "allow" else "allow"
        actions[entity] = policy.output_actions.get(entity, default)
    if all(action == "allow" for action in actions.values()):
        return None

    def detect(text: str) -> list[Finding]:
        return [finding for finding in detector.scan(text, memo) if policy.counts(finding)]

    return OutputMasker(detect, supplied=supplied, policy=actions, default="allow")
