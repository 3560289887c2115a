"""Google Pub/Sub push authentication: the issuer's key set fetched with httpx, tokens verified with
joserfc."""

from ctms_adapters.pubsub.jwks import JwksFetcher, JwksUnavailableError
from ctms_adapters.pubsub.verifier import GoogleOidcVerifier

__all__ = ["GoogleOidcVerifier", "JwksFetcher", "JwksUnavailableError"]
