"""The post.v2 use cases: the same posts and rules as v1 (validation, author-only changes,
deleted users refused, one event per change in the same transaction), plus versions, page
tokens, request ids, revisions and search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from post_service.domain.errors import (
    EtagMismatch,
    NotPostAuthor,
    PostNotFound,
    PostsNotFound,
    RequestIdReused,
    UserDeleted,
    UserNotFound,
)
from post_service.domain.events import DeletionReason, PostCreated, PostDeleted, PostUpdated
from post_service.domain.listing import (
    PostFilter,
    SearchFilter,
    resolve_page_size,
    revisions_scope,
    validate_batch,
    validate_query,
    validate_window,
)
from post_service.domain.page_tokens import PageTokens
from post_service.domain.posts import Post, require_id, validate_content, validate_username
from post_service.domain.versions import (
    Revision,
    VersionedPost,
    etag_of,
    micros,
    parse_etag,
    parse_request_id,
    request_fingerprint,
    resolve_change,
)
from post_service.service.ports_v2 import EarlierRequest, PostStoreV2, PostWriterV2
from post_service.service.posts import PostRules
from post_service.service.usernames import UsernameResolver

# AIP-155 asks for at least a day. Creates with a request id prune a few expired ids each,
# in their own transaction: more are pruned than added, and no worker is needed.
REQUEST_ID_RETENTION = timedelta(hours=24)
PRUNE_BATCH = 4
ID_LAYOUT = ">i"  # a page token's position: the last id (or revision) shown
RANK_LAYOUT = ">fi"  # in search: the last match's rank (float4, exact) and id


@dataclass(slots=True)
class PostView:
    post: VersionedPost
    username: str


@dataclass(slots=True)
class PostPage:
    """Posts and their authors' names ("" when unknown); no per-post wrapper: a page of a
    hundred would build a hundred."""

    posts: list[VersionedPost]
    usernames: Mapping[int, str]
    next_page_token: str


@dataclass(slots=True)
class RevisionPage:
    revisions: Sequence[Revision]
    next_page_token: str


@dataclass(frozen=True, slots=True)
class AuthorChoice:
    """A filter's author: by id, by username, or neither (None, "")."""

    author_id: int | None = None
    username: str = ""


class PostServiceV2:
    def __init__(self, store: PostStoreV2, usernames: UsernameResolver, rules: PostRules) -> None:
        self._store = store
        self._usernames = usernames
        self._rules = rules
        self._tokens: PageTokens | None = None

    async def get_post(self, post_id: int) -> PostView:
        require_id("id", post_id)
        async with self._store.reading() as reader:
            post = await reader.get_versioned(post_id)
        if post is None:
            raise PostNotFound(post_id)
        return PostView(post, await self._usernames.username(post.author_id))

    async def batch_get_posts(self, post_ids: list[int]) -> list[PostView]:
        validate_batch(post_ids)
        async with self._store.reading() as reader:
            found = {post.id: post for post in await reader.get_many(post_ids)}
        missing = [post_id for post_id in dict.fromkeys(post_ids) if post_id not in found]
        if missing:
            raise PostsNotFound(missing)
        posts = [found[post_id] for post_id in post_ids]
        names = await self._names(posts)
        return [PostView(post, names.get(post.author_id, "")) for post in posts]

    async def list_posts(
        self,
        page_size: int,
        page_token: str,
        author: AuthorChoice,
        created_from_us: int | None,
        created_until_us: int | None,
    ) -> PostPage:
        size = resolve_page_size(page_size, self._rules.page_limits)
        validate_window(created_from_us, created_until_us)
        author_id = await self._author_id(author) if author.username else author.author_id
        if author_id is not None:
            require_id("author_id", author_id)
        where = PostFilter(author_id, created_from_us, created_until_us)
        tokens = self._tokens or await self._load_page_tokens()
        before_id = (
            int(tokens.open(where.scope(), ID_LAYOUT, page_token)[0]) if page_token else None
        )
        async with self._store.reading() as reader:
            posts = list(await reader.list_filtered(where, before_id, size + 1))
        next_page = ""
        if len(posts) > size:
            del posts[size:]
            next_page = tokens.issue(where.scope(), ID_LAYOUT, posts[-1].id)
        return PostPage(posts, await self._names(posts), next_page)

    async def search_posts(
        self, query: str, page_size: int, page_token: str, author: AuthorChoice
    ) -> PostPage:
        size = resolve_page_size(page_size, self._rules.page_limits)
        where = SearchFilter(validate_query(query), await self._author_id(author))
        tokens = self._tokens or await self._load_page_tokens()
        after = None
        if page_token:
            rank, last_id = tokens.open(where.scope(), RANK_LAYOUT, page_token)
            after = (float(rank), int(last_id))
        async with self._store.reading() as reader:
            found = list(await reader.search(where, after, size + 1))
        next_page = ""
        if len(found) > size:
            del found[size:]
            last, rank = found[-1]
            next_page = tokens.issue(where.scope(), RANK_LAYOUT, rank, last.id)
        posts = [post for post, _ in found]
        return PostPage(posts, await self._names(posts), next_page)

    async def list_revisions(self, post_id: int, page_size: int, page_token: str) -> RevisionPage:
        require_id("post_id", post_id)
        size = resolve_page_size(page_size, self._rules.page_limits)
        scope = revisions_scope(post_id)
        tokens = self._tokens or await self._load_page_tokens()
        before = int(tokens.open(scope, ID_LAYOUT, page_token)[0]) if page_token else None
        async with self._store.reading() as reader:
            revisions = list(await reader.list_revisions(post_id, before, size + 1))
            if not revisions and not await reader.post_exists(post_id):
                raise PostNotFound(post_id)
        next_page = ""
        if len(revisions) > size:
            del revisions[size:]
            next_page = tokens.issue(scope, ID_LAYOUT, revisions[-1].revision)
        return RevisionPage(revisions, next_page)

    async def create_post(self, author_id: int, title: str, body: str, request_id: str) -> PostView:
        require_id("auth_id", author_id)
        content = validate_content(title, body, self._rules.max_body_chars)
        claimed = parse_request_id(request_id)
        fingerprint = request_fingerprint(author_id, content)
        async with self._store.transaction() as tx:
            if claimed is not None:
                earlier = await tx.claim_request(claimed, fingerprint)
                if earlier is not None:
                    return await self._replay(tx, earlier, fingerprint, request_id)
            post = await tx.add_post(author_id, content)
            if post is None:
                raise UserDeleted(author_id)
            if claimed is not None:
                await tx.attach_request(claimed, post.id)
                await tx.prune_requests(REQUEST_ID_RETENTION, PRUNE_BATCH)
            await tx.record_events([PostCreated(post)])
        return await self._view(post)

    async def update_post(
        self,
        caller_id: int,
        post_id: int,
        title: str,
        body: str,
        update_mask: Sequence[str],
        etag: str,
    ) -> PostView:
        require_id("auth_id", caller_id)
        require_id("id", post_id)
        change = resolve_change(update_mask, title, body, self._rules.max_body_chars)
        expected = parse_etag(etag)
        async with self._store.transaction() as tx:
            post = await tx.update_post(post_id, caller_id, change, expected)
            if post is None:
                raise await _why_refused(tx, post_id, caller_id, expected, editing=True)
            await tx.record_events([PostUpdated(post)])
        return await self._view(post)

    async def delete_post(self, caller_id: int, post_id: int, etag: str) -> None:
        require_id("auth_id", caller_id)
        require_id("id", post_id)
        expected = parse_etag(etag)
        async with self._store.transaction() as tx:
            if not await tx.delete_post_if(post_id, caller_id, expected):
                raise await _why_refused(tx, post_id, caller_id, expected, editing=False)
            await tx.record_events([PostDeleted(post_id, caller_id, DeletionReason.AUTHOR)])

    async def _replay(
        self, tx: PostWriterV2, earlier: EarlierRequest, fingerprint: bytes, request_id: str
    ) -> PostView:
        """A retry: the post the first call created, as it is now; nothing is written."""
        if earlier.fingerprint != fingerprint or earlier.post_id is None:
            raise RequestIdReused(request_id)
        post = await tx.get_versioned(earlier.post_id)
        if post is None:  # deleted since: the retry cannot bring it back
            raise PostNotFound(earlier.post_id)
        return PostView(post, await self._usernames.username(post.author_id))

    async def _author_id(self, author: AuthorChoice) -> int | None:
        if author.author_id is not None:
            return require_id("author_id", author.author_id)
        if not author.username:
            return None
        validate_username(author.username)
        author_id = await self._usernames.user_id(author.username)
        if author_id is None:
            raise UserNotFound(author.username)
        return author_id

    async def _load_page_tokens(self) -> PageTokens:
        self._tokens = PageTokens(await self._store.page_token_key())
        return self._tokens

    async def _view(self, post: Post) -> PostView:
        versioned = to_versioned(post)
        return PostView(versioned, await self._usernames.username(post.author_id))

    async def _names(self, posts: Sequence[VersionedPost]) -> Mapping[int, str]:
        if not posts:
            return {}
        return await self._usernames.usernames({post.author_id for post in posts})


def to_versioned(post: Post) -> VersionedPost:
    return VersionedPost(
        post.id,
        post.author_id,
        post.title,
        post.body,
        micros(post.created_at),
        micros(post.updated_at),
        post.version,
    )


async def _why_refused(
    tx: PostWriterV2, post_id: int, caller_id: int, expected: int | None, *, editing: bool
) -> Exception:
    """The conditional change touched no row; say why, in the order a caller can act on."""
    state = await tx.state_of(post_id)
    if state is None:
        return PostNotFound(post_id)
    if state.author_id != caller_id:
        return NotPostAuthor(post_id)
    if editing and await tx.is_deleted_user(caller_id):
        return UserDeleted(caller_id)
    return EtagMismatch(post_id, etag_of(state.version))
