"""TLS is verified by default, and only a source that says `verify_tls: false` skips it.

A real HTTPS server on 127.0.0.1 with a self-signed certificate: by default every connector
refuses it at the handshake (nothing, credentials least of all, is sent) with an error saying
what to do; trusting its certificate (REQUESTS_CA_BUNDLE) or opting out for that source lets
requests through.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from connectors.http import AuthenticationFailed, TrackerError
from flows.cli import app
from flows.sync import KINDS
from mapping.config import ConfigError, LpmConfig, parse_config
from tests.chaos.tls import TlsServer, https_server

TOKEN = "lpm-sentinel-tls-7c1d0e9a"
EMAIL = "lpm-sync@example.com"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TlsServer]:
    with https_server(tmp_path) as running:
        yield running


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLS_EMAIL", EMAIL)
    monkeypatch.setenv("TLS_TOKEN", TOKEN)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def source(kind: str, url: str, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": f"tls-{kind}", "kind": kind, "url": url, **extra}
    if kind == "jira":
        entry |= {
            "auth": {"email": {"env": "TLS_EMAIL"}, "token": {"env": "TLS_TOKEN"}},
            "scope": "project = PORT",
            "levels": {"Story": "story"},
        }
    else:
        entry |= {
            "project": "Fabrikam",
            "auth": {"token": {"env": "TLS_TOKEN"}},
            "scope": "[System.WorkItemType] = 'User Story'",
            "levels": {"User Story": "story"},
        }
    return entry


def configured(kind: str, url: str, **extra: Any) -> Any:
    config = LpmConfig.model_validate(
        {"portfolio": {"name": "TLS"}, "sources": [source(kind, url, **extra)]}
    )
    return config.sources[0]


def discover(source_config: Any) -> None:
    connector = KINDS[source_config.kind]().connect(source_config)
    try:
        connector.discover()
    finally:
        connector.close()


@pytest.mark.parametrize("kind", ["jira", "azure_devops"])
def test_tls_is_verified_by_default_and_a_self_signed_site_is_refused(
    server: TlsServer, kind: str
) -> None:
    source_config = configured(kind, server.url)
    assert source_config.verify_tls is True
    with pytest.raises(TrackerError) as refused:
        discover(source_config)
    message = str(refused.value)
    assert "TLS verification" in message and "verify_tls: false" in message
    assert TOKEN not in message and TOKEN not in repr(refused.value)
    assert server.authorizations == [], "nothing may be sent before the certificate is trusted"


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("kind", ["jira", "azure_devops"])
def test_verify_tls_false_on_the_source_is_the_only_way_past_an_untrusted_certificate(
    server: TlsServer, kind: str
) -> None:
    with pytest.raises(AuthenticationFailed):  # the server's 401: the handshake went through
        discover(configured(kind, server.url, verify_tls=False))
    user = EMAIL if kind == "jira" else ""
    expected = "Basic " + base64.b64encode(f"{user}:{TOKEN}".encode()).decode()
    assert expected in server.authorizations


def test_trusting_the_sites_certificate_passes_verification(
    server: TlsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the error advises: install the site's CA certificate (here the certificate itself)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert))
    with pytest.raises(AuthenticationFailed):
        discover(configured("jira", server.url))
    assert server.authorizations


@pytest.mark.parametrize("value", ["maybe", "", [], {"off": True}])
def test_verify_tls_accepts_only_a_boolean(value: Any) -> None:
    text = yaml.safe_dump(
        {
            "portfolio": {"name": "x"},
            "sources": [source("jira", "https://x.example", verify_tls=value)],
        }
    )
    with pytest.raises(ConfigError) as invalid:
        parse_config(text)
    assert any("verify_tls" in problem for problem in invalid.value.problems)


def test_lpm_sync_reports_a_tls_failure_clearly_without_the_secret(
    server: TlsServer, tmp_path: Path
) -> None:
    config = tmp_path / "lpm.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": f"sqlite:///{tmp_path / 'lpm.db'}"},
                "portfolio": {"name": "TLS"},
                "sources": [source("jira", server.url)],
            }
        )
    )
    result = CliRunner().invoke(app, ["sync", "--config", str(config)])
    assert result.exit_code == 1
    assert "TLS verification" in result.output and "verify_tls: false" in result.output
    assert TOKEN not in result.output
    assert server.authorizations == []
