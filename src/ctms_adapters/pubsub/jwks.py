"""The JSON Web Key Set that signs Pub/Sub's OIDC tokens, fetched over HTTP and cached.

* Cached for the `Cache-Control: max-age` the server sends (Google's certificates say how long they stay
  valid); without one, for `default_max_age` seconds.
* A token naming a key the cached set lacks forces a refetch (keys rotate), at most once every
  `min_refresh_interval` seconds so a flood of forged `kid`s cannot turn into a flood of fetches.
* Concurrent refreshes are coalesced: one request in flight, every waiter reuses its answer.
* When a refresh fails but the previous set holds the key, the previous set is used.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


class JwksUnavailableError(Exception):
    """The key set could not be fetched or parsed."""


def max_age_of(cache_control: str | None) -> int | None:
    """Seconds of `max-age` in a `Cache-Control` header; None without one (or with `no-store`)."""
    if not cache_control or "no-store" in cache_control.lower():
        return None
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


class JwksFetcher:
    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        default_max_age: float = 300.0,
        min_refresh_interval: float = 5.0,
        timeout: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._client = client
        self._default_max_age = default_max_age
        self._min_refresh_interval = min_refresh_interval
        self._timeout = timeout
        self._monotonic = monotonic
        self._keys: dict[str, RSAKey] = {}
        self._fetched_at: float | None = None
        self._expires_at = 0.0
        self._generation = 0
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many HTTP fetches were made (observability and tests)

    async def key(self, kid: str) -> RSAKey | None:
        """The RSA key with this id, or None when the current key set (refreshed if needed) lacks it.
        Raises `JwksUnavailableError` when the set is needed and cannot be fetched."""
        now = self._monotonic()
        if self._fetched_at is None or now >= self._expires_at:
            await self._refresh(self._generation)
        elif kid not in self._keys and now - self._fetched_at >= self._min_refresh_interval:
            await self._refresh(self._generation, keep_on_failure=True)
        return self._keys.get(kid)

    async def _refresh(self, seen_generation: int, *, keep_on_failure: bool = False) -> None:
        async with self._lock:
            if self._generation != seen_generation:
                return  # another task refreshed while this one waited: use its answer
            try:
                keys, max_age = await self._fetch()
            except JwksUnavailableError:
                if keep_on_failure or self._keys:
                    return  # keep the last good set; a later request retries
                raise
            now = self._monotonic()
            self._keys = keys
            self._fetched_at = now
            self._expires_at = now + (self._default_max_age if max_age is None else max_age)
            self._generation += 1

    async def _fetch(self) -> tuple[dict[str, RSAKey], int | None]:
        self.fetches += 1
        try:
            response = await self._client.get(self._url, timeout=self._timeout)
            response.raise_for_status()
            document = response.json()
            key_set = KeySet.import_key_set(document)
        except (httpx.HTTPError, ValueError, TypeError, KeyError, JoseError) as error:
            raise JwksUnavailableError(f"cannot fetch the key set: {error!r}") from error
        keys = {
            key.kid: key for key in key_set.keys if isinstance(key, RSAKey) and key.kid is not None
        }
        return keys, max_age_of(response.headers.get("cache-control"))
