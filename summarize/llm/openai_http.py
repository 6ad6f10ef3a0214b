"""OpenAI-compatible HTTP engine: a chat model served inside the hospital network.

POSTs ``{base_url}/chat/completions`` with ``stream: true`` and reads the Server-Sent
Events (``data: {...}`` lines ending with ``data: [DONE]``), as vLLM, llama.cpp's
server, TGI, Ollama and LM Studio speak it. TLS is verified by default (a hospital CA
bundle can be configured); the API key (OS keyring, then an environment variable) goes
in an ``Authorization: Bearer`` header and is never logged. Every failure is one
:class:`LlmError` line that never quotes the server's body (it may echo patient text).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import ssl
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from summarize.errors import LlmError
from summarize.llm.base import ChatMessage, Generation, TokenCallback
from summarize.llm.config import LlmConfig
from summarize.llm.engine import EngineBase, Request, StopFilter, chat_dicts
from summarize.llm.registry import register

logger = logging.getLogger(__name__)

DEFAULT_CONTEXT = 8192
CHARS_PER_TOKEN = 3.5
MAX_STOP = 4  # the OpenAI API accepts at most four stop strings; the rest are cut here


def _is_local(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _verify(value: bool | str) -> bool | ssl.SSLContext:
    if isinstance(value, bool):
        return value
    path = Path(value).expanduser()
    if path.is_file():
        return ssl.create_default_context(cafile=str(path))
    if path.is_dir():
        return ssl.create_default_context(capath=str(path))
    raise LlmError(f"CA bundle {path} (llm.verify_tls) does not exist: give the path of the "
                   "hospital's PEM CA bundle, or true to use the system certificates")


class _Invalid(Exception):
    """The server's answer is not the OpenAI protocol."""


def _sse_events(lines: Iterator[str]) -> Iterator[str]:
    """The data of each Server-Sent Event (multi-line data joined with newlines)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):  # comment / keep-alive
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
        # event:, id:, retry: carry nothing we need
    if data:
        yield "\n".join(data)


class OpenAICompatibleEngine(EngineBase):
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        api_model: str | None = None,
        api_key: SecretStr | None = None,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        verify_tls: bool | str = True,
        max_context: int | None = None,
        temperature: float = 0.0,
        allow_http: bool = False,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise LlmError(f"llm.base_url {base_url!r} is not an http(s) URL: use e.g. "
                           "https://llm.sykehus.local/v1")
        if parts.scheme == "http" and not _is_local(parts.hostname or "") and not allow_http:
            # the transcript and the Bearer key would cross the network in clear text
            raise LlmError(f"llm.base_url {base_url!r} is plain http to another machine: use https "
                           "(or set llm.allow_http for a lab set-up)")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.api_model = api_model
        self.model_id = api_model or "server-default"
        self.context_length = max_context or DEFAULT_CONTEXT
        self.default_temperature = temperature
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        if parts.scheme == "http" and not _is_local(parts.hostname or ""):
            logger.warning("LLM server %s is plain http: transcripts travel unencrypted; "
                           "use https", self.base_url)
        if verify_tls is False:
            logger.warning("TLS certificate verification is off for %s", self.base_url)
        headers = {"Accept": "text/event-stream, application/json"}
        if api_key is not None and api_key.get_secret_value():
            headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            verify=_verify(verify_tls),
            headers=headers,
            follow_redirects=False,
        )
        logger.info("LLM server %s (model %s, API key %s)", self.base_url, self.model_id,
                    "set" if "Authorization" in headers else "none")

    # ------------------------------------------------------------------ protocol

    preferred_batch = 4  # concurrent requests: the server batches them

    def count_tokens(self, text: str) -> int:
        """An estimate (~3.5 characters a token); the server does not tell before a call."""
        return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0

    def _generate(self, request: Request) -> Generation:
        messages = request.messages
        prompt_estimate = sum(self.count_tokens(m.content) + 4 for m in messages)
        # The prompt size is an estimate: shrink max_tokens to fit the context (vLLM refuses
        # prompt + max_tokens > its window) but leave a refusal to the server.
        room = self.context_length - prompt_estimate
        limit = max(1, min(request.max_tokens, room)) if room > 0 else request.max_tokens
        stop = [s for s in (request.stop or []) if s]
        payload: dict[str, Any] = {
            "model": self._model_name(),
            "messages": chat_dicts(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": limit,
            "temperature": request.temperature,
        }
        if stop:
            payload["stop"] = stop[:MAX_STOP]
        if request.json_schema is not None:  # vLLM, llama.cpp's server: constrained decoding
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "record", "schema": request.json_schema, "strict": True},
            }
        logger.debug("POST %s: %d messages, max_tokens %d", self.url, len(messages), limit)
        t0 = time.perf_counter()
        try:
            with self._client.stream("POST", self.url, json=payload) as response:
                self._check_status(response)
                text, n, finish, usage = self._read(response, stop, request.on_token)
        except LlmError:
            raise
        except _Invalid as exc:
            raise LlmError(
                f"the LLM server at {self.base_url} returned an invalid response ({exc}): "
                "is llm.base_url an OpenAI-compatible /v1 endpoint?"
            ) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        seconds = time.perf_counter() - t0
        return Generation(
            text=text,
            tokens=int(usage.get("completion_tokens") or n),
            seconds=seconds,
            prompt_tokens=int(usage.get("prompt_tokens") or prompt_estimate),
            finish_reason=finish,
        )

    def generate_batch(
        self,
        prompts: Sequence[list[ChatMessage]],
        *,
        max_tokens: Sequence[int],
        temperature: float | None = None,
    ) -> list[Generation]:
        """Several prompts as concurrent requests: vLLM, TGI and llama.cpp's server batch
        concurrent requests on the GPU, so drafting several utterances costs about one."""
        if len(prompts) <= 1:
            return [self.generate(p, max_tokens=m, temperature=temperature)
                    for p, m in zip(prompts, max_tokens, strict=True)]
        with ThreadPoolExecutor(max_workers=len(prompts), thread_name_prefix="llm-request") as pool:
            futures = [pool.submit(self.generate, p, max_tokens=m, temperature=temperature)
                       for p, m in zip(prompts, max_tokens, strict=True)]
            return [f.result() for f in futures]

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ internals

    def _model_name(self) -> str:
        """The configured model, else the first one the server lists (else 'default')."""
        if self.api_model:
            return self.api_model
        try:
            response = self._client.get(f"{self.base_url}/models",
                                        timeout=httpx.Timeout(self.connect_timeout_s))
            data = response.json().get("data") if response.status_code == 200 else None
            name = data[0].get("id") if isinstance(data, list) and data else None
        except (httpx.HTTPError, ValueError, AttributeError):
            name = None
        self.api_model = name if isinstance(name, str) and name else "default"
        self.model_id = self.api_model
        logger.info("LLM server %s: using model %s", self.base_url, self.api_model)
        return self.api_model

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        where = f"the LLM server at {self.base_url}"
        if status in (401, 403):
            fix = ("the API key is missing or wrong: store it with `keyring set ambient-scribe "
                   f"{self.base_url}` or set the environment variable of llm.api_key_env")
            msg = f"{where} refused the request (HTTP {status}): {fix}"
        elif status == 404:
            msg = (f"{where} has no {self.url} (HTTP 404): check llm.base_url (it usually ends "
                   "in /v1) and llm.api_model")
        elif status == 413:
            msg = f"{where} refused the request as too large (HTTP 413): shorten the transcript"
        elif status == 429:
            msg = f"{where} is busy (HTTP 429): try again in a moment"
        elif status >= 500:
            msg = f"{where} failed (HTTP {status}): try again, or ask its administrators"
        else:
            msg = (f"{where} rejected the request (HTTP {status}): check llm.api_model and "
                   "llm.max_context")
        raise LlmError(msg)

    def _read(
        self, response: httpx.Response, stop: list[str], on_token: TokenCallback | None,
    ) -> tuple[str, int, str, dict[str, Any]]:
        stopper = StopFilter(stop)
        usage: dict[str, Any] = {}

        def emit(piece: str) -> None:
            piece = stopper.feed(piece)
            if piece and on_token is not None:
                on_token(piece)

        content_type = response.headers.get("content-type", "")
        if "application/json" in content_type:  # the server ignored stream: true
            obj = self._json(response.read().decode("utf-8", "replace"))
            choice = self._choice(obj)
            message = choice.get("message")
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                raise _Invalid("no message content")
            emit(message["content"])
            emit_rest = stopper.finish()
            if emit_rest and on_token is not None:
                on_token(emit_rest)
            if isinstance(obj.get("usage"), dict):
                usage = obj["usage"]
            finish = "length" if choice.get("finish_reason") == "length" else "stop"
            return stopper.text, self.count_tokens(stopper.text), finish, usage

        chunks = 0
        finish_reason: str | None = None
        done = False
        for data in _sse_events(response.iter_lines()):
            if data.strip() == "[DONE]":
                done = True
                break
            obj = self._json(data)
            if obj.get("error"):
                raise LlmError(f"the LLM server at {self.base_url} reported an error while "
                               "answering: try again, or ask its administrators")
            if isinstance(obj.get("usage"), dict):
                usage = obj["usage"]
            choices = obj.get("choices")
            if not isinstance(choices, list):
                raise _Invalid("no choices in a chunk")
            if not choices:  # the usage-only chunk
                continue
            choice = choices[0]
            if not isinstance(choice, dict):
                raise _Invalid("a choice is not an object")
            delta = choice.get("delta") or {}
            piece = delta.get("content") if isinstance(delta, dict) else None
            if piece is None and isinstance(choice.get("text"), str):
                piece = choice["text"]
            if piece:
                if not isinstance(piece, str):
                    raise _Invalid("content is not text")
                chunks += 1
                emit(piece)
                if stopper.stopped:
                    break  # leaving the with block closes the stream: the server stops
            if choice.get("finish_reason"):
                finish_reason = str(choice["finish_reason"])
        if not (done or finish_reason or stopper.stopped):
            raise LlmError(f"the LLM server at {self.base_url} ended the answer early "
                           "(connection closed): try again")
        rest = stopper.finish()
        if rest and on_token is not None:
            on_token(rest)
        finish = "length" if finish_reason == "length" and not stopper.stopped else "stop"
        return stopper.text, chunks, finish, usage

    @staticmethod
    def _json(data: str) -> dict[str, Any]:
        try:
            obj = json.loads(data)
        except ValueError:
            raise _Invalid("not JSON") from None
        if not isinstance(obj, dict):
            raise _Invalid("not a JSON object")
        return obj

    @staticmethod
    def _choice(obj: dict[str, Any]) -> dict[str, Any]:
        choices = obj.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise _Invalid("no choices")
        return choices[0]

    def _transport_error(self, exc: httpx.HTTPError) -> LlmError:
        where = f"the LLM server at {self.base_url}"
        if isinstance(exc, httpx.ConnectTimeout):
            return LlmError(f"cannot reach {where}: no connection within "
                            f"{self.connect_timeout_s:g} s (timeout); check the address and "
                            "the network")
        if isinstance(exc, httpx.TimeoutException):
            return LlmError(f"{where} sent nothing for {self.timeout_s:g} s (timeout): it is "
                            "overloaded or stuck; try again or raise llm.timeout_s")
        if isinstance(exc, httpx.ConnectError):
            text = str(exc)
            if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
                return LlmError(f"{where} has a TLS certificate this machine does not trust: "
                                "set llm.verify_tls to the hospital's CA bundle (PEM)")
            return LlmError(f"cannot connect to {where} (connection refused or host down): "
                            "check that the server is running and llm.base_url")
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return LlmError(f"{where} dropped the connection mid-answer: try again")
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return LlmError(f"llm.base_url {self.base_url} is not a usable URL: use e.g. "
                            "https://llm.sykehus.local/v1")
        return LlmError(f"the request to {where} failed ({type(exc).__name__}): try again")


@register("openai")
def create_openai(config: LlmConfig) -> OpenAICompatibleEngine:
    if not config.base_url:
        raise LlmError("the openai LLM engine needs llm.base_url, e.g. "
                       "https://llm.sykehus.local/v1")
    return OpenAICompatibleEngine(
        config.base_url,
        api_model=config.api_model,
        api_key=config.resolve_api_key(),
        timeout_s=config.timeout_s,
        connect_timeout_s=config.connect_timeout_s,
        verify_tls=config.verify_tls,
        max_context=config.max_context,
        temperature=config.temperature,
        allow_http=config.allow_http,
    )
