"""The static files storage of the demo and production (``SKYBOARD_STATIC_MANIFEST=1``)."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class CompressedManifestStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's compressed manifest storage: content-hashed names (served as immutable,
    cached for a year), gzip (and brotli) copies, CSS ``url()`` references rewritten to the
    hashed names.

    A ``url()`` naming a file that is not vendored is left as written instead of failing
    collectstatic: KaTeX's CSS lists .woff and .ttf fallbacks after the .woff2 fonts skyboard
    ships, and browsers that load .woff2 (all current ones) never ask for them.
    """

    def hashed_name(self, name, content=None, filename=None):
        try:
            return super().hashed_name(name, content, filename)
        except ValueError:
            if content is None and not self.exists(self.clean_name(name)):
                return name
            raise
