"""post.Post over gRPC: proto in, use case, proto out. No rules live here."""

from __future__ import annotations

import grpc

from post_service._generated.post import post_pb2 as pb
from post_service._generated.post.post_pb2_grpc import PostServicer as PostServicerBase
from post_service.domain.posts import AuthoredPost
from post_service.service.posts import PostService

EMPTY = pb.Empty()


class PostServicer(PostServicerBase):
    def __init__(self, posts: PostService) -> None:
        self._posts = posts

    async def CreatePost(
        self, request: pb.PostCreateRequest, context: grpc.aio.ServicerContext
    ) -> pb.PostOutResponse:
        return to_message(
            await self._posts.create_post(request.auth_id, request.title, request.body)
        )

    async def DeletePost(
        self, request: pb.PostDeleteRequest, context: grpc.aio.ServicerContext
    ) -> pb.Empty:
        await self._posts.delete_post(request.auth_id, request.post_id)
        return EMPTY

    async def GetGroupPost(
        self, request: pb.PostGetGroupRequest, context: grpc.aio.ServicerContext
    ) -> pb.PostListResponse:
        return to_list(await self._posts.list_posts(request.limit, request.last_id))

    async def GetByIdPost(
        self, request: pb.PostGetByIdRequest, context: grpc.aio.ServicerContext
    ) -> pb.PostOutResponse:
        return to_message(await self._posts.get_post(request.post_id))

    async def GetByIdUserPost(
        self, request: pb.PostGetByIdUserRequest, context: grpc.aio.ServicerContext
    ) -> pb.PostListResponse:
        return to_list(await self._posts.list_user_posts(request.username, request.auth_id))

    async def PutPost(
        self, request: pb.PostPutRequest, context: grpc.aio.ServicerContext
    ) -> pb.PostOutResponse:
        edited = await self._posts.edit_post(
            request.auth_id, request.post_id, request.title, request.body
        )
        return to_message(edited)


def to_message(authored: AuthoredPost) -> pb.PostOutResponse:
    post = authored.post
    return pb.PostOutResponse(
        post_id=post.id, title=post.title, body=post.body, username=authored.username
    )


def to_list(posts: list[AuthoredPost]) -> pb.PostListResponse:
    response = pb.PostListResponse()
    # add() builds each entry in place; a list of ready messages would be copied in (twice
    # the cost for a 100-post page).
    add = response.posts.add
    for authored in posts:
        post = authored.post
        add(post_id=post.id, title=post.title, body=post.body, username=authored.username)
    return response
