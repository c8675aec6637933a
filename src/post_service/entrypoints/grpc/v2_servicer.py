"""post.v2.PostService over gRPC: proto in, use case, proto out. No rules live here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from google.protobuf import empty_pb2, timestamp_pb2

from post_service._generated.post.v2 import post_pb2 as pb
from post_service._generated.post.v2.post_pb2_grpc import PostServiceServicer
from post_service.domain.versions import Revision
from post_service.service.posts_v2 import AuthorChoice, PostServiceV2, PostView

EMPTY = empty_pb2.Empty()


class PostServiceV2Servicer(PostServiceServicer):
    def __init__(self, posts: PostServiceV2) -> None:
        self._posts = posts

    async def GetPost(
        self, request: pb.GetPostRequest, context: grpc.aio.ServicerContext
    ) -> pb.Post:
        return to_post(await self._posts.get_post(request.id))

    async def BatchGetPosts(
        self, request: pb.BatchGetPostsRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchGetPostsResponse:
        response = pb.BatchGetPostsResponse()
        add_posts(response.posts, await self._posts.batch_get_posts(list(request.ids)))
        return response

    async def ListPosts(
        self, request: pb.ListPostsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPostsResponse:
        page = await self._posts.list_posts(
            request.page_size,
            request.page_token,
            author_choice(request),
            micros_of(request, "create_time_start"),
            micros_of(request, "create_time_end"),
        )
        response = pb.ListPostsResponse(next_page_token=page.next_page_token)
        add_posts(response.posts, page.posts)
        return response

    async def CreatePost(
        self, request: pb.CreatePostRequest, context: grpc.aio.ServicerContext
    ) -> pb.Post:
        created = await self._posts.create_post(
            request.auth_id, request.title, request.body, request.request_id
        )
        return to_post(created)

    async def UpdatePost(
        self, request: pb.UpdatePostRequest, context: grpc.aio.ServicerContext
    ) -> pb.Post:
        updated = await self._posts.update_post(
            request.auth_id,
            request.id,
            request.title,
            request.body,
            list(request.update_mask.paths),
            request.etag,
        )
        return to_post(updated)

    async def DeletePost(
        self, request: pb.DeletePostRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        await self._posts.delete_post(request.auth_id, request.id, request.etag)
        return EMPTY

    async def ListPostRevisions(
        self, request: pb.ListPostRevisionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPostRevisionsResponse:
        page = await self._posts.list_revisions(
            request.post_id, request.page_size, request.page_token
        )
        response = pb.ListPostRevisionsResponse(next_page_token=page.next_page_token)
        add_revisions(response.revisions, page.revisions)
        return response

    async def SearchPosts(
        self, request: pb.SearchPostsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SearchPostsResponse:
        page = await self._posts.search_posts(
            request.query, request.page_size, request.page_token, author_choice(request)
        )
        response = pb.SearchPostsResponse(next_page_token=page.next_page_token)
        add_posts(response.posts, page.posts)
        return response


def author_choice(request: pb.ListPostsRequest | pb.SearchPostsRequest) -> AuthorChoice:
    match request.WhichOneof("author"):
        case "author_id":
            return AuthorChoice(author_id=request.author_id)
        case "author_username":
            return AuthorChoice(username=request.author_username)
    return AuthorChoice()


def micros_of(request: Any, field: str) -> int | None:
    if not request.HasField(field):
        return None
    moment: timestamp_pb2.Timestamp = getattr(request, field)
    return int(moment.seconds) * 1_000_000 + int(moment.nanos) // 1_000


def timestamp(micros: int) -> timestamp_pb2.Timestamp:
    seconds, fraction = divmod(micros, 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=fraction * 1_000)


def to_post(view: PostView) -> pb.Post:
    post = view.post
    return pb.Post(
        id=post.id,
        author=pb.Author(id=post.author_id, username=view.username),
        title=post.title,
        body=post.body,
        create_time=timestamp(post.created_us),
        update_time=timestamp(post.updated_us),
        revision=post.version - 1,
        etag=post.etag,
    )


def add_posts(field: Any, views: Iterable[PostView]) -> None:
    # add() builds each entry in place (v1's servicer measured it at half the cost of
    # appending ready messages).
    add = field.add
    for view in views:
        post = view.post
        created, updated = post.created_us, post.updated_us
        add(
            id=post.id,
            author=pb.Author(id=post.author_id, username=view.username),
            title=post.title,
            body=post.body,
            create_time=timestamp_pb2.Timestamp(
                seconds=created // 1_000_000, nanos=created % 1_000_000 * 1_000
            ),
            update_time=timestamp_pb2.Timestamp(
                seconds=updated // 1_000_000, nanos=updated % 1_000_000 * 1_000
            ),
            revision=post.version - 1,
            etag=post.etag,
        )


def add_revisions(field: Any, revisions: Sequence[Revision]) -> None:
    add = field.add
    for revision in revisions:
        add(
            revision=revision.revision,
            title=revision.title,
            body=revision.body,
            create_time=timestamp(revision.created_us),
        )
