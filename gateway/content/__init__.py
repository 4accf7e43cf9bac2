"""What gets published: posts with their targets and the checks they pass, and media assets with their formats and URL tokens.

Outside this wing, code imports from ``gateway.content`` only: the names below are the wing's
public surface, and its modules are private (``tests/test_architecture.py`` holds every caller
to it).
"""

from gateway.content.media import (
    DEFAULT_LIMITS,
    MiB,
    delete_media,
    file_path,
    find_media,
    list_media,
    open_download,
    public_url,
    register_media,
    restrict_media_root,
    upload_media,
)
from gateway.content.media_formats import MediaKind
from gateway.content.media_tokens import access_token, token_hash
from gateway.content.post_checks import Facts, evaluate, read_facts_many
from gateway.content.post_status import drop_status_triggers, install_status_triggers, status_triggers
from gateway.content.posts import (
    PENDING_STATUSES,
    POST_STATUSES,
    TARGET_STATUSES,
    PostCheck,
    PostFilter,
    PostInput,
    PostValidator,
    TargetCheck,
    TargetInput,
    content_json,
    create_post,
    derive_status,
    dry_run,
    find_post,
    find_targets,
    group_by_post,
    input_of,
    list_posts,
    lock_post,
    lock_targets,
    targets_of,
    update_post,
)

__all__ = [
    "access_token",
    "content_json",
    "create_post",
    "DEFAULT_LIMITS",
    "delete_media",
    "drop_status_triggers",
    "derive_status",
    "dry_run",
    "evaluate",
    "Facts",
    "file_path",
    "find_media",
    "find_post",
    "find_targets",
    "group_by_post",
    "input_of",
    "install_status_triggers",
    "list_media",
    "list_posts",
    "lock_post",
    "lock_targets",
    "MediaKind",
    "MiB",
    "open_download",
    "PENDING_STATUSES",
    "POST_STATUSES",
    "PostCheck",
    "PostFilter",
    "PostInput",
    "PostValidator",
    "public_url",
    "read_facts_many",
    "register_media",
    "restrict_media_root",
    "status_triggers",
    "TARGET_STATUSES",
    "TargetCheck",
    "TargetInput",
    "targets_of",
    "token_hash",
    "update_post",
    "upload_media",
]
