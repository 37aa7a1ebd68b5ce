"""The rule registry: config names → rule specs. Adding a rule is one module and one line here."""

from __future__ import annotations

from bot.rules import candidate, flow_inflection, gex_shift, regime_flip, top_n
from bot.rules.base import DetectContext, Detection, Memory, RuleConfig, RuleSpec

__all__ = ["RULES", "DetectContext", "Detection", "Memory", "RuleConfig", "RuleSpec"]

RULES: dict[str, RuleSpec] = {
    spec.name: spec
    for spec in (
        regime_flip.SPEC,
        candidate.SPEC,
        top_n.SPEC,
        gex_shift.SPEC,
        flow_inflection.SPEC,
    )
}
"""Every rule by the name users write under ``[rules.<name>]``."""
