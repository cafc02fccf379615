"""A local stand-in for Together AI's /v2/videos API, scriptable per job.

Use `TogetherSandbox` in-process (tests, benchmarks) or run `python -m sandbox.together`.
"""

from sandbox.together.app import TogetherSandbox
from sandbox.together.models import MODELS, ModelSpec
from sandbox.together.scripts import JobScript, RecordedRequest, SandboxJob

__all__ = ["MODELS", "JobScript", "ModelSpec", "RecordedRequest", "SandboxJob", "TogetherSandbox"]
