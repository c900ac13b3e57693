"""Run code examples the way a reader does: each in a new Python process, from nothing.

One runner process (``python -c``, started in the repository) imports torch and the
implementations once, then forks a child per example: every example starts with an empty
namespace and a process no other example has touched, so a missing import or a name
defined elsewhere fails as it would when pasted into a fresh interpreter. The fork only
saves re-importing the modules (0.1 s of about 0.25 s an example for the implementations).
``>>>`` examples run as doctests (their printed output is checked); other blocks as
scripts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from tools.catalog import ROOT

_RUNNER = r"""
import doctest, io, json, os, signal, sys, traceback
import torch  # noqa: F401  (imported once: the children start without it in scope)
import implementations  # noqa: F401  (likewise: an example must still import it)
examples = json.load(sys.stdin)
answer = os.fdopen(os.dup(1), "w")  # the results; what examples print goes nowhere
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
sys.stdout = open(os.devnull, "w")
results = []
for name, code in examples:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        signal.alarm(120)
        message = ""
        try:
            if ">>>" in code:
                scope = {"__name__": "__main__"}
                test = doctest.DocTestParser().get_doctest(code, scope, name, name, 0)
                out = io.StringIO()
                flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
                runner = doctest.DocTestRunner(optionflags=flags)
                runner.run(test, out=out.write, clear_globs=False)
                if runner.failures:
                    message = out.getvalue()
            else:
                exec(compile(code, name, "exec"), {"__name__": "__main__"})
        except BaseException:
            message = traceback.format_exc(limit=-2)
        with os.fdopen(write, "w") as pipe:
            pipe.write(message)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        message = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status and not message:
        message = f"the process ended with status {status}"
    results.append(message)
json.dump(results, answer)
answer.close()
"""


@dataclass(frozen=True)
class Outcome:
    name: str
    error: str  # empty when the example ran

    @property
    def ok(self) -> bool:
        return not self.error


def run_fresh(examples: list[tuple[str, str]], timeout: float = 600) -> list[Outcome]:
    """Run each ``(name, code)`` in its own fresh process; one outcome per example."""
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=json.dumps(examples),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    errors = json.loads(result.stdout)
    return [Outcome(name, error) for (name, _), error in zip(examples, errors, strict=True)]
