"""The library's user-facing errors, each shown as one line by the CLI.

InputError: bad input or a missing resource (exit 2). ServiceUnavailable: a service the run depends on (an LLM
server) failed for good mid-run (exit 1); the run stops at the shard it was writing, with every finished shard
and every reply already received kept, so the same command resumes once the service is back.
"""

from modality_transfer.errors import InputError


class ServiceUnavailable(RuntimeError):
    """A server kept failing after its retries; stop rather than turn every later request into a reject."""

    def at_shard(self, index: int) -> "ServiceUnavailable":
        return ServiceUnavailable(f"{self} (while writing shard {index})")


__all__ = ["InputError", "ServiceUnavailable"]
