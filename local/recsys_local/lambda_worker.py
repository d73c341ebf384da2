"""A warm Lambda execution environment for the local stack (stdlib only; run with ``python -S``).

The executor starts one per function and code version: ``python -I -S lambda_worker.py CODE_DIR RUNTIME_DIR
HANDLER``. ``-I`` keeps this file's folder (the project's ``recsys_local``, whose ``secrets.py`` would shadow
the standard library's) and the environment's ``PYTHON*`` variables out; ``-S`` keeps site-packages out. So
``sys.path`` holds only the function's unzipped package, the runtime's libraries (boto3, as the Lambda Python runtime
provides) and the standard library, and a dependency missing from the zip fails here as in AWS. Requests are JSON
lines on stdin (the event and the invocation's context), answers JSON lines on the original stdout; the handler's own
output goes to stderr (the log).
"""

import importlib
import json
import os
import sys
import time
import traceback


class LambdaContext:
    """The attributes and method of the Lambda Python runtime's context object."""

    def __init__(self, fields: dict) -> None:
        self.aws_request_id = fields["aws_request_id"]
        self.function_name = fields["function_name"]
        self.function_version = fields["function_version"]
        self.invoked_function_arn = fields["invoked_function_arn"]
        self.memory_limit_in_mb = str(fields["memory_limit_in_mb"])
        self.log_group_name = fields["log_group_name"]
        self.log_stream_name = fields["log_stream_name"]
        self._deadline_ms = int(fields["deadline_ms"])
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


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
                answer = {"result": handler(request["event"], LambdaContext(request["context"]))}
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
