"""Errors the domain and use cases raise; the gRPC entrypoint maps each to one status."""


class PostServiceError(Exception):
    """Base of every error the service reports to its callers on purpose."""


class InvalidPost(PostServiceError):
    """A request field breaks a rule; ``field`` names it for the caller."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class PostNotFound(PostServiceError):
    def __init__(self, post_id: int) -> None:
        super().__init__(f"post {post_id} not found")
        self.post_id = post_id


class NotPostAuthor(PostServiceError):
    def __init__(self, post_id: int) -> None:
        super().__init__(f"only the author may change post {post_id}")
        self.post_id = post_id


class UserNotFound(PostServiceError):
    def __init__(self, username: str) -> None:
        super().__init__("user not found")
        self.username = username


class UserDeleted(PostServiceError):
    """The caller's account was deleted: they may no longer write posts."""

    def __init__(self, user_id: int) -> None:
        super().__init__(f"auth_id: user {user_id} was deleted")
        self.user_id = user_id


class DependencyUnavailable(PostServiceError):
    """A dependency (the database, or User-service where no fallback exists) cannot answer.

    Callers may retry: the request did not take effect.
    """

    def __init__(self, dependency: str) -> None:
        super().__init__(f"{dependency} is unavailable, retry later")
        self.dependency = dependency


class PostsNotFound(PostServiceError):
    """A batch named posts that do not exist (post.v2 BatchGetPosts is all or nothing)."""

    def __init__(self, post_ids: list[int]) -> None:
        super().__init__("posts not found: " + ", ".join(map(str, post_ids)))
        self.post_ids = post_ids


class EtagMismatch(PostServiceError):
    """The post changed since the caller read it: nothing was changed (post.v2)."""

    def __init__(self, post_id: int, current_etag: str) -> None:
        super().__init__(f"etag: post {post_id} changed since it was read, read it again")
        self.post_id = post_id
        self.current_etag = current_etag


class RequestIdReused(PostServiceError):
    """A create's request id was used before for different content (post.v2)."""

    def __init__(self, request_id: str) -> None:
        super().__init__(f"request_id: {request_id} was already used for another post")
        self.request_id = request_id
