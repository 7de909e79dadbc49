"""What the login can end in: accepted, rejected, or an error it cannot decide through."""

EXIT_ACCEPTED = 0
EXIT_REJECTED = 1
EXIT_ERROR = 2


class LoginError(RuntimeError):
    """Login cannot decide at all (no usable bundle, unreadable input, no camera): exit code 2."""
