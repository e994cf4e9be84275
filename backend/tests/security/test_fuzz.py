"""Fuzzing the whole API from its own OpenAPI document with schemathesis, as a real user.

Schemathesis's engine (what `st run` runs) goes through every operation in four phases: the
documented examples, coverage (boundary and invalid values, unexpected methods, missing
headers), fuzzing (positive and negative data) and stateful sequences following the links
between operations. Every answer is checked: no 5xx, a documented status code, a body matching
the documented schema and content type, invalid input refused, valid input accepted, auth
enforced (each operation is replayed without a token and with a bad one), `Allow` listing the
path's methods. Bounded: a few examples per operation, a deadline, deterministic inputs.

(The schemathesis pytest plugin does not run on this pytest; the engine is the same machinery.)
"""

from __future__ import annotations

import collections
import copy
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode, engine
from schemathesis.engine import events
from schemathesis.python import asgi

from tests.conftest import User, make_settings
from todochat.main import create_app

# The email validator refuses special-use domains (.test, .local …) that JSON Schema's "email"
# format allows; real sign-ups use real domains, and that refusal is a deliberate 422.
schemathesis.openapi.format("email", st.emails(domains=st.just("example.com")))


@schemathesis.hook
def filter_body(context: Any, body: Any) -> bool:
    """JSON Schema counts 1.0 as an integer, so the generator sends `"conversation_id": 7.0` as
    valid data; the API takes JSON integers only (strict ids, D37), a documented 422 that no
    schema can express. Tested in test_input_rules.py."""
    if not isinstance(body, dict):
        return True
    return not any(isinstance(v, float) and v.is_integer() for v in body.values())


MAX_EXAMPLES = 8
MAX_STATEFUL_STEPS = 4
# Sign-up and sign-in spend a quarter second of argon2 on every well-formed request, most of the
# run's time. Their database work (one row by email) is the same on both engines, and the other
# tests run it on both; here they are fuzzed on SQLite only, to keep the suite bounded.
SQLITE_ONLY_TAGS = ("auth",)


def document_for(user: User, spec: dict[str, Any]) -> dict[str, Any]:
    """The app's document with `{user_id}` pinned to the signed-in user: their own corner of the
    API. Other values are still generated in negative mode, and must be refused."""
    spec = copy.deepcopy(spec)
    for operations in spec["paths"].values():
        for operation in operations.values():
            # An Idempotency-Key stands for one request: the generator reuses values ("null")
            # with other bodies, which is a documented 422 that no schema can express. The
            # header is tested in test_idempotency.py.
            operation["parameters"] = [
                p for p in operation.get("parameters", []) if p["name"] != "Idempotency-Key"
            ]
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "user_id" and parameter["in"] == "path":
                    parameter["schema"] = {**parameter["schema"], "enum": [user.id]}
    return spec


def run_schemathesis(database_url: str) -> tuple[collections.Counter[tuple[str, int]], list[str]]:
    user = User()
    app = create_app(make_settings(database_url))
    schema = schemathesis.openapi.from_dict(document_for(user, app.openapi()))
    schema.app = app  # requests go in-process; schemathesis runs the lifespan in its own loop
    if not database_url.startswith("sqlite"):
        for tag in SQLITE_ONLY_TAGS:
            schema = schema.exclude(tag=tag)
    schema.config.update(headers={"Authorization": f"Bearer {user.token}"})
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        deterministic=True,
    )
    schema.config.phases.stateful.max_steps = MAX_STATEFUL_STEPS

    answers: collections.Counter[tuple[str, int]] = collections.Counter()
    problems: list[str] = []
    try:
        for event in engine.from_schema(schema).execute():
            if isinstance(event, events.ScenarioFinished):
                for interaction in event.recorder.interactions.values():
                    if interaction.response is not None:
                        label = f"{interaction.request.method} {_template(interaction, schema)}"
                        answers[(label, interaction.response.status_code)] += 1
                for checks in event.recorder.checks.values():
                    for check in checks:
                        if check.failure_info is not None:
                            problems.append(f"{event.label}: {check.failure_info.failure}")
            elif isinstance(event, events.NonFatalError | events.FatalError):
                problems.append(f"schemathesis error: {event.info.format()}")
    finally:
        asgi.shutdown_lifespans()
    return answers, problems


def _template(interaction: Any, schema: Any) -> str:
    path = interaction.request.uri.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
    for template in schema.raw_schema["paths"]:
        parts, wanted = template.strip("/").split("/"), path.strip("/").split("/")
        if len(parts) == len(wanted) and all(
            p.startswith("{") or p == w for p, w in zip(parts, wanted, strict=True)
        ):
            return template
    return "/" + path


def test_every_operation_answers_as_documented_under_fuzzing(database_url: str) -> None:
    answers, problems = run_schemathesis(database_url)

    per_operation: dict[str, collections.Counter[int]] = collections.defaultdict(
        collections.Counter
    )
    for (label, status), count in answers.items():
        per_operation[label][status] += count
    engine_name = database_url.split(":", 1)[0]
    print(f"\nschemathesis on {engine_name}: {sum(answers.values())} requests")
    for label, statuses in sorted(per_operation.items()):
        print(f"  {label}: {dict(sorted(statuses.items()))}")

    assert problems == []
    assert not [label for (label, status) in answers if status >= 500]
    # The fuzzer got past authentication: every documented operation answered 2xx at least once.
    fuzzed = database_url.startswith("sqlite")
    documented = {
        f"{method.upper()} {path}"
        for path, operations in create_app(make_settings(database_url)).openapi()["paths"].items()
        for method, operation in operations.items()
        if fuzzed or not set(operation.get("tags", ())) & set(SQLITE_ONLY_TAGS)
    }
    succeeded = {label for (label, status) in answers if 200 <= status < 300}
    # Made-up credentials never match an account: sign-in "reaches" its check with a 401
    # (its successes are tested in test_passwords).
    succeeded |= {label for (label, status) in answers if label == "POST /api/auth/signin"}
    assert documented <= succeeded, documented - succeeded
