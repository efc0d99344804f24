"""The one exception type the CLI turns into a single error line."""


class HarnessError(Exception):
    """Bad input or an unusable file: the message is shown to the user as it is, on one line."""
