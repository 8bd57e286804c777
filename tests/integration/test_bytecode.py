"""The build ships byte-compiled modules, and Python 3.13 loads them: in the Lambda image, with a
built function and the built layer mounted read-only as Lambda mounts them, importing the handler
compiles nothing from source (what ``python3.13 -v`` reports for each module it loads)."""

from __future__ import annotations

import re

from local import engine
from local.paths import BASE_IMAGE
from local.stack import Stack

CODE_FROM = re.compile(r"^# code object from '?(.+?)'?$", re.MULTILINE)


def test_every_handler_imports_the_builds_pyc_files_and_compiles_nothing(stack: Stack) -> None:
    # Given the stack's `sam build`: the layer and each function, byte-compiled for python3.13
    build = stack.build_dir
    functions = sorted(p.name for p in build.iterdir() if (p / "app.py").is_file())
    assert len(functions) >= 4
    for function in functions:
        # When the image's python3.13 imports the handler (tracing on, as in Lambda: the X-Ray
        # SDK is imported too)
        out = engine.docker(
            "run", "--rm", "--network", "none", "-w", "/var/task",
            "-v", f"{build / function}:/var/task:ro", "-v", f"{build / 'BrokerLayer'}:/opt:ro",
            "--entrypoint", "/var/lang/bin/python3.13", BASE_IMAGE, "-v", "-c", "import app",
            stderr=True,
        )  # fmt: skip
        ours = [path for path in CODE_FROM.findall(out) if path.startswith(("/opt/", "/var/task/"))]
        # Then every module of the build came from its .pyc file, none from its source
        assert [path for path in ours if not path.endswith(".pyc")] == [], function
        assert "/var/task/__pycache__/app.cpython-313.pyc" in ours, function
        assert len(ours) > 100, function
