from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PostCreateRequest(_message.Message):
    __slots__ = ("auth_id", "title", "body")
    AUTH_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    auth_id: int
    title: str
    body: str
    def __init__(self, auth_id: _Optional[int] = ..., title: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...

class PostDeleteRequest(_message.Message):
    __slots__ = ("auth_id", "post_id")
    AUTH_ID_FIELD_NUMBER: _ClassVar[int]
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    auth_id: int
    post_id: int
    def __init__(self, auth_id: _Optional[int] = ..., post_id: _Optional[int] = ...) -> None: ...

class PostGetGroupRequest(_message.Message):
    __slots__ = ("limit", "last_id")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    LAST_ID_FIELD_NUMBER: _ClassVar[int]
    limit: int
    last_id: int
    def __init__(self, limit: _Optional[int] = ..., last_id: _Optional[int] = ...) -> None: ...

class PostGetByIdRequest(_message.Message):
    __slots__ = ("post_id",)
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    post_id: int
    def __init__(self, post_id: _Optional[int] = ...) -> None: ...

class PostGetByIdUserRequest(_message.Message):
    __slots__ = ("username", "auth_id")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    AUTH_ID_FIELD_NUMBER: _ClassVar[int]
    username: str
    auth_id: int
    def __init__(self, username: _Optional[str] = ..., auth_id: _Optional[int] = ...) -> None: ...

class PostPutRequest(_message.Message):
    __slots__ = ("auth_id", "post_id", "title", "body")
    AUTH_ID_FIELD_NUMBER: _ClassVar[int]
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    auth_id: int
    post_id: int
    title: str
    body: str
    def __init__(self, auth_id: _Optional[int] = ..., post_id: _Optional[int] = ..., title: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PostOutResponse(_message.Message):
    __slots__ = ("post_id", "title", "body", "username")
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    post_id: int
    title: str
    body: str
    username: str
    def __init__(self, post_id: _Optional[int] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., username: _Optional[str] = ...) -> None: ...

class PostListResponse(_message.Message):
    __slots__ = ("posts",)
    POSTS_FIELD_NUMBER: _ClassVar[int]
    posts: _containers.RepeatedCompositeFieldContainer[PostOutResponse]
    def __init__(self, posts: _Optional[_Iterable[_Union[PostOutResponse, _Mapping]]] = ...) -> None: ...
