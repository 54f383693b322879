"""Help center pages, readable without signing in: people who cannot sign in need them most."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from portal.helpcenter import articles


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "helpcenter/index.html", {"articles": articles.available_articles()})


@require_safe
def article(request: HttpRequest, slug: str) -> HttpResponse:
    found = articles.find(slug)
    if found is None:
        raise Http404("No such article")
    others = [a for a in articles.available_articles() if a.slug != found.slug]
    return render(request, "helpcenter/article.html", {
        "article": found, "body": articles.render_article(found, request), "others": others})
