"""A warm Lambda execution environment for the local stack (stdlib only; run with ``python -S``).

The executor starts one per function and code version: ``python -S lambda_worker.py CODE_DIR RUNTIME_DIR HANDLER``.
``sys.path`` holds only the function's unzipped package, the runtime's libraries (boto3, as the Lambda Python
runtime provides) and the standard library, so a dependency missing from the zip fails here as in AWS. Requests are
JSON lines on stdin, answers JSON lines on the original stdout; the handler's own output goes to stderr (the log).
"""

import importlib
import json
import os
import sys
import traceback


def main() -> None:
    code_dir, runtime_dir, handler_name = sys.argv[1:4]
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # print() in the handler goes to the log, not into the protocol
    sys.path[:0] = [code_dir, runtime_dir]
    module_name, _, function_name = handler_name.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # an import error is the invocation's error, as Lambda reports Runtime.ImportModuleError
        handler = None
        init_error = {
            "errorType": "Runtime.ImportModuleError",
            "errorMessage": f"Unable to import module '{module_name}': {exc}",
            "stackTrace": traceback.format_exc().splitlines(),
        }
    for line in sys.stdin:
        request = json.loads(line)
        if handler is None:
            answer = {"error": init_error}
        else:
            try:
                answer = {"result": handler(request["event"], None)}
            except Exception as exc:
                answer = {
                    "error": {
                        "errorType": type(exc).__name__,
                        "errorMessage": str(exc),
                        "stackTrace": traceback.format_exc().splitlines(),
                    }
                }
        protocol.write(json.dumps(answer, default=str) + "\n")
        protocol.flush()


if __name__ == "__main__":
    main()
