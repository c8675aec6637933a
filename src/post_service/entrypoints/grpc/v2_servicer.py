"""post.v2.PostService over gRPC: proto in, use case, proto out. No rules live here."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2

from post_service._generated.post.v2 import post_pb2 as pb
from post_service._generated.post.v2.post_pb2_grpc import PostServiceServicer
from post_service.entrypoints.grpc.v2_messages import PostEncoder, add_revisions, micros_of
from post_service.service.posts_v2 import AuthorChoice, PostServiceV2

EMPTY = empty_pb2.Empty()


class PostServiceV2Servicer(PostServiceServicer):
    def __init__(self, posts: PostServiceV2) -> None:
        self._posts = posts
        self._encoder = PostEncoder()

    async def GetPost(
        self, request: pb.GetPostRequest, context: grpc.aio.ServicerContext
    ) -> pb.Post:
        view = await self._posts.get_post(request.id)
        return self._encoder.post(view.post, view.username)

    async def BatchGetPosts(
        self, request: pb.BatchGetPostsRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchGetPostsResponse:
        response = pb.BatchGetPostsResponse()
        views = await self._posts.batch_get_posts(list(request.ids))
        names = {view.post.author_id: view.username for view in views}
        self._encoder.add_posts(response, [view.post for view in views], names)
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
        self._encoder.add_posts(response, page.posts, page.usernames)
        return response

    async def CreatePost(
        self, request: pb.CreatePostRequest, context: grpc.aio.ServicerContext
    ) -> pb.Post:
        created = await self._posts.create_post(
            request.auth_id, request.title, request.body, request.request_id
        )
        return self._encoder.post(created.post, created.username)

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
        return self._encoder.post(updated.post, updated.username)

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
        self._encoder.add_posts(response, page.posts, page.usernames)
        return response


def author_choice(request: pb.ListPostsRequest | pb.SearchPostsRequest) -> AuthorChoice:
    match request.WhichOneof("author"):
        case "author_id":
            return AuthorChoice(author_id=request.author_id)
        case "author_username":
            return AuthorChoice(username=request.author_username)
    return AuthorChoice()
