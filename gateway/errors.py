"""One exception hierarchy for the gateway (shape of aiomqtt/exceptions.py)."""


class TillsynError(Exception):
    """Base class of every error the gateway raises on purpose."""


class ConfigError(TillsynError):
    """A configuration, registry or profile file is wrong.

    Each problem is one line naming the file, key path, value and reason.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class DecodeError(TillsynError):
    """A payload could not be decoded; the message becomes a dead letter."""


class StorageError(TillsynError):
    """The database refused or could not be reached."""


class Fenced(TillsynError):
    """A worker tried to commit for an MQTT session slot it no longer holds (its lease
    expired and another worker may have it): nothing was committed or acknowledged."""


class AuthError(TillsynError):
    """A bearer token is missing, malformed, expired or unknown."""
