"""One exception type for bad user data, so tools can print it as a single clear line."""


class DatasetError(ValueError):
    """A dataset file or value is missing or invalid; the message names the file/key."""
