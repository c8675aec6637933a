"""post.v2 SearchPosts through the real process, on a small Russian + English corpus:
stemming in both languages, ranking, web-search syntax, the author filter and paging."""

from __future__ import annotations

import grpc
import pytest

from post_service._generated.post.v2 import post_pb2 as pb
from post_service._generated.post.v2.post_pb2_grpc import PostServiceStub
from tests.support.rich_errors import rich_error

pytestmark = pytest.mark.e2e

AUTHOR, OTHER_AUTHOR = 906, 907
CORPUS = {
    "marathon": ("Running a marathon", "Tips for long distance runners and training plans."),
    "pasta": ("Cooking pasta", "She runs every morning, then cooks pasta for lunch."),
    "garden": ("Garden notes", "Nothing about sport here."),
    "cats": ("Кошки и собаки", "Наши кошки любят спать на солнце."),
    "roof": ("Погода", "Вчера я видел кошку на крыше."),
    "code": ("Программирование", "Пишем код на Python каждый день."),
}


@pytest.fixture(scope="module")
def corpus(channel: grpc.Channel) -> dict[str, int]:
    stub = PostServiceStub(channel)
    stub.CreatePost(
        pb.CreatePostRequest(auth_id=OTHER_AUTHOR, title="Running late", body="Sorry."),
        timeout=10,
    )
    return {
        key: stub.CreatePost(
            pb.CreatePostRequest(auth_id=AUTHOR, title=title, body=body), timeout=10
        ).id
        for key, (title, body) in CORPUS.items()
    }


@pytest.fixture
def posts(channel: grpc.Channel) -> PostServiceStub:
    return PostServiceStub(channel)


def found(
    posts: PostServiceStub, corpus: dict[str, int], query: str, **fields: object
) -> list[str]:
    request = pb.SearchPostsRequest(query=query, author_id=AUTHOR, **fields)  # type: ignore[arg-type]
    names = {post_id: key for key, post_id in corpus.items()}
    return [names[post.id] for post in posts.SearchPosts(request, timeout=10).posts]


def test_english_words_match_their_other_forms_and_title_matches_rank_first(
    posts: PostServiceStub, corpus: dict[str, int]
) -> None:
    # "running" is in neither text: the stem "run" finds "Running" (title) and "runs" (body).
    assert found(posts, corpus, "running") == ["marathon", "pasta"]
    assert found(posts, corpus, "cooking") == ["pasta"]


def test_russian_words_match_their_other_forms(
    posts: PostServiceStub, corpus: dict[str, int]
) -> None:
    # "кошка" is in no post: its stem finds "Кошки" (title and body) and "кошку" (body).
    assert found(posts, corpus, "кошка") == ["cats", "roof"]
    assert found(posts, corpus, "крыша") == ["roof"]


def test_web_search_syntax_phrases_exclusions_and_mixed_languages(
    posts: PostServiceStub, corpus: dict[str, int]
) -> None:
    assert found(posts, corpus, "кошка -крыша") == ["cats"]
    assert found(posts, corpus, '"long distance"') == ["marathon"]
    assert found(posts, corpus, '"distance long"') == []
    assert found(posts, corpus, "python код") == ["code"]
    assert sorted(found(posts, corpus, "pasta or крыша")) == ["pasta", "roof"]
    assert found(posts, corpus, "the and") == []  # stop words only: nothing to look for


def test_the_author_filter_and_paging(posts: PostServiceStub, corpus: dict[str, int]) -> None:
    everyone = posts.SearchPosts(pb.SearchPostsRequest(query="run"), timeout=10).posts
    assert {p.author.id for p in everyone} >= {AUTHOR, OTHER_AUTHOR}
    other = posts.SearchPosts(
        pb.SearchPostsRequest(query="run", author_username=f"user-{OTHER_AUTHOR}"), timeout=10
    )
    assert [(p.title, p.author.username) for p in other.posts] == [
        ("Running late", f"user-{OTHER_AUTHOR}")
    ]

    first = posts.SearchPosts(
        pb.SearchPostsRequest(query="run", author_id=AUTHOR, page_size=1), timeout=10
    )
    assert [p.id for p in first.posts] == [corpus["marathon"]]
    second = posts.SearchPosts(
        pb.SearchPostsRequest(
            query="run", author_id=AUTHOR, page_size=1, page_token=first.next_page_token
        ),
        timeout=10,
    )
    assert [p.id for p in second.posts] == [corpus["pasta"]]
    assert second.next_page_token == ""
    other_query = rich_error(
        posts.SearchPosts,
        pb.SearchPostsRequest(query="runs", author_id=AUTHOR, page_token=first.next_page_token),
    )
    assert [f for f, _ in other_query.field_violations] == ["page_token"]


def test_a_blank_query_is_refused(posts: PostServiceStub) -> None:
    error = rich_error(posts.SearchPosts, pb.SearchPostsRequest(query="  "))
    assert error.field_violations == [("query", "must not be blank")]
