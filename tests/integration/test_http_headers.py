"""Headers on every answer (pages, API, 404s, the webhook fast path) and who may scrape /metrics."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from tests.support.inbound import envelope, make_setup, signed, text_message
from tests.support.servers import scrape_metrics

HARDENING = ("content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options")


async def test_every_answer_carries_the_security_headers_and_no_store(client_factory):
    client = await client_factory(settings={"public_url": "https://inbox.example.com"})
    setup = await make_setup(client.app.state.runtime)
    body, headers = signed(envelope(messages=[text_message("hello")]))
    answers = {
        "page": await client.get("/login"),
        "404 page": await client.get("/no/such/page"),
        "api": await client.get("/api/v1/conversations", headers=setup.auth),
        "api 404": await client.get("/api/v1/nothing-here", headers=setup.auth),
        "webhook": await client.post(setup.webhook_path, content=body, headers=headers),
    }
    for name, answer in answers.items():
        for header in HARDENING:
            assert header in answer.headers, (name, header)
        assert answer.headers["cache-control"] == "no-store", name
        assert answer.headers["strict-transport-security"].startswith("max-age="), name
    static = await client.get("/static/js/inbox.js")
    assert static.status_code == 200 and static.headers["cache-control"] == "no-cache"  # cached, revalidated


async def test_no_hsts_over_plain_http(client_factory):
    client = await client_factory(settings={"public_url": "http://localhost:8000"})
    assert "strict-transport-security" not in (await client.get("/login")).headers


async def test_metrics_need_the_token_or_a_local_scraper(client_factory):
    local = await client_factory()
    assert (await local.get("/metrics")).status_code == 401  # the test client is not on this host
    assert (await scrape_metrics(local.app)).status_code == 200  # a scraper on this host needs no token
    guarded = await client_factory(settings={"metrics_token": SecretStr("scrape-token-0001")})
    app = guarded.app
    remote = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("203.0.113.5", 4000)),
                               base_url="http://testserver")
    async with remote:
        assert (await remote.get("/metrics")).status_code == 401
        assert (await remote.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        scraped = await remote.get("/metrics", headers={"Authorization": "Bearer scrape-token-0001"})
        assert scraped.status_code == 200 and "inbox_" in scraped.text
