"""Documents parsed once per text, within a bound of tokens."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import ParserCache


class BoundedParserCache(ParserCache):
    """strawberry's ``ParserCache``, which also bounds a document's tokens, as ``MaxTokensLimiter``
    does: the bound set in the parsing hook itself, where ``MaxTokensLimiter`` entered a hook of
    its own on every request to set it."""

    def __init__(self, maxsize: int, max_tokens: int) -> None:
        super().__init__(maxsize=maxsize)
        self.max_tokens = max_tokens

    def on_parse(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.max_tokens
        yield from super().on_parse()
