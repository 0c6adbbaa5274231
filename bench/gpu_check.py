"""A source checkout's command for the GPU check: resnet_core/gpu_stages.py (the stages behind `resnet-sweep doctor
--gpu`) with `--record`, which appends the report's Markdown to bench/RESULTS.md.

    PYTHONPATH=. python3 bench/gpu_check.py --out DIR            # one CUDA GPU (H100/H200)
    PYTHONPATH=. python3 bench/gpu_check.py --out DIR --record   # also append the Markdown to bench/RESULTS.md
    PYTHONPATH=. python3 bench/gpu_check.py --tiny --out DIR     # CPU, seconds: the same code, tiny sizes

Needs torch only; the machine profile goes to the state directory as with the doctor.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a plain checkout

from resnet_core.gpu_stages import argument_parser, main as run_checks  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser()
    parser.add_argument("--record", action="store_true", help="append the Markdown to bench/RESULTS.md")
    argv = list(sys.argv[1:] if argv is None else argv)
    code, checked = run_checks(argv, parser, "PYTHONPATH=. python3 bench/gpu_check.py")
    if "--record" in argv and checked is not None:
        with Path(__file__).with_name("RESULTS.md").open("a") as f:
            f.write("\n" + checked.markdown)
    return code


if __name__ == "__main__":
    sys.exit(main())
