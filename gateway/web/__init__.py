"""HTTP beside the GraphQL endpoint: request body limits, the dashboard page, media serving, the OAuth
callback, and the WebSocket protocol that writes a fan-out's ready-made frames.

Outside this wing, code imports from ``gateway.web`` only: the names below are the wing's
public surface, and its modules are private (``tests/test_architecture.py`` holds every caller
to it).
"""

from gateway.web.body_limit import BodyLimitMiddleware, multipart_limit
from gateway.web.dashboard import dashboard
from gateway.web.media_serving import serve_media
from gateway.web.oauth_callback import oauth_callback
from gateway.web.preview import preview_page, preview_stylesheet
from gateway.web.websocket_frames import FRAME_WRITER, FrameWriter, FrameWritingProtocol, encode_text_frame, frame_writer

__all__ = [
    "FRAME_WRITER",
    "BodyLimitMiddleware",
    "FrameWriter",
    "FrameWritingProtocol",
    "dashboard",
    "encode_text_frame",
    "frame_writer",
    "multipart_limit",
    "oauth_callback",
    "preview_page",
    "preview_stylesheet",
    "serve_media",
]
