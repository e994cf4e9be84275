"""Signals shared by several rules: messages about a person or asking a question, which are
never commands, and the keyword classifier for what no grammar rule caught."""

from __future__ import annotations

import re

from todochat.agent.offline.cleaning import FLAGS
from todochat.agent.offline.intent import Intent, Kind
from todochat.agent.offline.targets import loose_target

# A message about someone ("I need to ...", "we should ...") is no request to rename or delete.
PERSON = re.compile(r"^(?:i|we|you|he|she|they|i'm|we're|you're|i am|we are)\b", FLAGS)


# A question ("what is done?") is never an action, whatever words follow.
QUESTION_HEAD = re.compile(r"^(?:what|which|anything|everything|who|how|is|are|any)\b", FLAGS)


# Keyword classifier for what no grammar rule caught: cue words anywhere in the message.
_COMPLETE_CUES = re.compile(
    r"\b(?:done|finished|completed?|tick(?:ed)?|check(?:ed)? off|cross(?:ed)? off|accomplished)\b",
    FLAGS,
)
_DELETE_CUES = re.compile(
    r"\b(?:delete|deleted|remove|removed|erase|bin|trash|scrap|drop|nuke|kill|wipe|get rid)\b",
    FLAGS,
)


# Negated, hedged or questioning messages never trigger an action from loose cue words.
NOT_A_COMMAND = re.compile(
    r"^(?:did|have|has|was|were|do|does|why|when|where|whose|should|shall|could|would|will|can|"
    r"may|might|if)\b|\b(?:not|never|don'?t|do not|doesn'?t|didn'?t|won'?t|isn'?t|aren'?t|"
    r"haven'?t|no|maybe|perhaps|might|later|whether|if)\b",
    FLAGS,
)


def cue_intent(text: str) -> Intent | None:
    """Keyword classifier: one kind of action word anywhere, and an unmistakable target.

    Only explicit ids, a list position or "it" are accepted here, never title words: a
    destructive action on a guessed task is worse than asking.
    """
    if QUESTION_HEAD.match(text) or NOT_A_COMMAND.search(text):
        return None
    cue_sets: tuple[tuple[Kind, re.Pattern[str]], ...] = (
        ("complete", _COMPLETE_CUES),
        ("delete", _DELETE_CUES),
    )
    kinds = [kind for kind, cues in cue_sets if cues.search(text)]
    if len(kinds) != 1:
        return None
    target = loose_target(text)
    return Intent(kinds[0], target=target) if target else None
