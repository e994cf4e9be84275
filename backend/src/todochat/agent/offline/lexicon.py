"""Verb lexicons: past forms (for "I rang mum" / "the plants are watered") and the verbs that
usually open a task title (for "make that sourdough bread" after "add buy bread")."""

from __future__ import annotations


def wordset(text: str) -> frozenset[str]:
    """A word list written as prose, so the long lexicons below stay readable."""
    return frozenset(text.split())


IRREGULAR_PAST: dict[str, str] = {
    "ate": "eat",
    "eaten": "eat",
    "began": "begin",
    "begun": "begin",
    "bent": "bend",
    "bit": "bite",
    "bitten": "bite",
    "blew": "blow",
    "blown": "blow",
    "bought": "buy",
    "bound": "bind",
    "broke": "break",
    "broken": "break",
    "brought": "bring",
    "built": "build",
    "burnt": "burn",
    "came": "come",
    "caught": "catch",
    "chose": "choose",
    "chosen": "choose",
    "dealt": "deal",
    "did": "do",
    "done": "do",
    "drew": "draw",
    "drawn": "draw",
    "drank": "drink",
    "drunk": "drink",
    "drove": "drive",
    "driven": "drive",
    "dug": "dig",
    "fed": "feed",
    "fought": "fight",
    "found": "find",
    "flew": "fly",
    "flown": "fly",
    "froze": "freeze",
    "frozen": "freeze",
    "gave": "give",
    "given": "give",
    "got": "get",
    "gotten": "get",
    "went": "go",
    "gone": "go",
    "grew": "grow",
    "grown": "grow",
    "hung": "hang",
    "hid": "hide",
    "hidden": "hide",
    "held": "hold",
    "kept": "keep",
    "knew": "know",
    "known": "know",
    "laid": "lay",
    "learnt": "learn",
    "left": "leave",
    "lent": "lend",
    "lost": "lose",
    "made": "make",
    "mailed": "mail",
    "met": "meet",
    "mown": "mow",
    "paid": "pay",
    "rebuilt": "rebuild",
    "redid": "redo",
    "redone": "redo",
    "rewrote": "rewrite",
    "rewritten": "rewrite",
    "rode": "ride",
    "ridden": "ride",
    "rang": "ring",
    "rung": "ring",
    "ran": "run",
    "sang": "sing",
    "sung": "sing",
    "sent": "send",
    "sewn": "sew",
    "shook": "shake",
    "shaken": "shake",
    "shown": "show",
    "sat": "sit",
    "slept": "sleep",
    "sold": "sell",
    "sought": "seek",
    "spent": "spend",
    "spoke": "speak",
    "spoken": "speak",
    "spun": "spin",
    "stole": "steal",
    "stolen": "steal",
    "stood": "stand",
    "stuck": "stick",
    "swam": "swim",
    "swum": "swim",
    "swept": "sweep",
    "taught": "teach",
    "took": "take",
    "taken": "take",
    "told": "tell",
    "threw": "throw",
    "thrown": "throw",
    "tore": "tear",
    "torn": "tear",
    "understood": "understand",
    "woke": "wake",
    "woken": "wake",
    "wore": "wear",
    "worn": "wear",
    "won": "win",
    "wrote": "write",
    "written": "write",
    "saw": "see",
    "seen": "see",
}
# Past tenses that report something other than finishing the task.
NOT_COMPLETION = wordset(
    """need needed feed seed speed bleed breed proceed succeed indeed embed bed red shed wed
    started wanted tried planned forgot forgotten decided hoped liked loved hated added deleted
    removed created listed updated renamed changed marked missed postponed delayed skipped
    cancelled canceled asked wondered said used noticed heard felt thought tired bored excited
    interested worried scared married stressed confused annoyed surprised pleased supposed
    based located allowed expected required overdue"""
)
# After an object ("the oil changed"), fewer forms exclude a report of completion.
NOT_REPORTED = NOT_COMPLETION - wordset("changed updated renamed marked listed")
# Verbs that open task titles; a correction without one keeps the old verb ("Buy" + "oat milk").
TASK_VERBS = wordset(
    """add answer apply arrange ask back bake book bring buy call cancel change charge check
    choose clean clear collect confirm contact cook copy cut deliver do download drop email
    empty feed file fill find finish fix fold follow get give go hang help hire hoover install
    invite iron join learn leave lock look mail make meet mop move mow order organise organize
    pack paint pay phone pick plan plant post prep prepare print put read rebook recycle remind
    renew repair replace reply research reserve return review ring run schedule see sell send
    set sew shop sign sort start study submit swap take talk tell text tidy top train update
    upload vacuum visit wash watch water wipe wrap write walk attend bathe celebrate declutter
    defrost donate draft dust exercise fetch grab groom mend message polish practice practise
    proofread rake reschedule respond revise scan shovel ship shred sweep thank trim unpack
    weed"""
)

# ✔ ✓ ✅ ☑ ☒ (a variation selector after one is dropped with the message's clean-up).
CHECK_MARK = r"[\u2714\u2713\u2705\u2611\u2612]"
