"""What the login can end in: accepted, rejected, or an error it cannot decide through."""


class LoginError(RuntimeError):
    """Login cannot decide at all (no usable bundle, unreadable input, no camera): exit code 2."""
