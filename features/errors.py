"""The one kind of error a command answers with exit 2 and its message, no traceback: the input
is wrong (a file, a folder, an option's value), and the message names what and why."""


class InputError(ValueError):
    """What the user gave cannot be used; the message says which input and why."""
