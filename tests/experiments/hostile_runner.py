"""Runs many hostile-input cases of one experiment script inside one Python process.

Starting Python + TensorFlow costs 5-8 s per process, so `test_hostile_inputs.py` starts this
module once per script: it loads the script (its flags and ``main``), then for each case resets
the flags, parses the case's argv and calls ``main`` through `_cli.guarded_main`, the same guarded
path `_cli.run` uses. It records the exit status, the ``error:`` lines written to stderr, any
escaped exception (a traceback in a real run) and whether a file under the watched directories
changed (hashes before and after).

    python tests/experiments/hostile_runner.py <script.py> <cases.json> <results.json>

cases.json: a list of {"name", "argv", "watch"} (watch: directories to hash).
"""

import contextlib
import hashlib
import io
import json
import os
import runpy
import sys
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [REPO, os.path.join(REPO, "experiments")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def snapshot(directories):
    """{path: sha256 or "<dir>"} of everything under ``directories`` (unreadable: "<unreadable>")."""
    state = {}
    for top in directories:
        if os.path.isfile(top):
            state[top] = _hash(top)
            continue
        for root, dirs, files in os.walk(top):
            for name in dirs:
                state[os.path.join(root, name)] = "<dir>"
            for name in files:
                state[os.path.join(root, name)] = _hash(os.path.join(root, name))
    return state


def _hash(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return "<unreadable>"


def run_case(main, flags_module, guarded_main, argv, watch):
    """Runs one case; returns {"status", "stderr_errors", "exception", "changed"}."""
    from absl import flags

    before = snapshot(watch)
    captured = io.StringIO()
    status, exception = 0, None
    flags_module.FLAGS.unparse_flags()
    with contextlib.redirect_stderr(captured):
        try:
            remaining = flags_module.FLAGS(argv)
            guarded_main(main, remaining)
        except flags.Error as error:  # what _cli._parse_flags prints
            captured.write(f"error: {error}\n")
            status = 2
        except SystemExit as done:
            status = done.code if isinstance(done.code, int) else 1
        except BaseException:  # noqa: BLE001 - this is what the harness looks for
            exception = traceback.format_exc(limit=-6)
            status = 1
    after = snapshot(watch)
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    errors = [line for line in captured.getvalue().splitlines() if line.startswith("error: ")]
    return {"status": status, "stderr_errors": errors, "exception": exception,
            "changed": changed, "stderr_lines": len(captured.getvalue().splitlines())}


def main():
    script, cases_path, results_path = sys.argv[1:4]
    import _cli  # noqa: E402 - after sys.path is set
    from absl import flags, logging

    logging.set_verbosity(logging.WARNING)
    module = runpy.run_path(script, run_name="hostile_harness")
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    results = {}
    for case in cases:
        argv = [script] + case["argv"]
        results[case["name"]] = run_case(module["main"], flags, _cli.guarded_main, argv,
                                         case["watch"])
        with open(results_path, "w", encoding="utf-8") as f:  # partial results survive a crash
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
