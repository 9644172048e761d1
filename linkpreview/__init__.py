"""Link-preview unfurling: resolvers registered by domain, the ``Preview`` answer, its cache, and
a generic OpenGraph resolver that fetches pages through an SSRF guard."""

from .cache import MemoryPreviewCache, PreviewCache, RedisPreviewCache
from .preview import NO_PREVIEW, Preview, PreviewError
from .registry import ConflictError, Registration, Registry
from .request import PreviewRequest
from .service import PreviewService

__all__ = ["NO_PREVIEW", "ConflictError", "MemoryPreviewCache", "Preview", "PreviewCache", "PreviewError",
           "PreviewRequest", "PreviewService", "RedisPreviewCache", "Registration", "Registry"]
