"""A small async Kubernetes API client for the children the operator owns.

kopf watches and patches the custom resources itself but has no public client for other
kinds, so this wraps aiohttp (kopf's own HTTP stack) with the credentials kopf logged in
with (``kopf.ConnectionInfo``: in-cluster service account or kubeconfig). It speaks only
what the operator needs: get, create, JSON merge patch, delete, and :meth:`KubeClient.apply`
— create-if-missing, patch-if-changed — keyed on the manifest-hash annotation the builders
stamp, so an unchanged manifest costs one GET and no write.
"""

from __future__ import annotations

import base64
import logging
import ssl
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import kopf

from .builders import MANIFEST_HASH_ANNOTATION

log = logging.getLogger("tradefleet.operator.kube")

_PLURALS = {"ConfigMap": "configmaps", "Service": "services", "Deployment": "deployments",
            "Secret": "secrets", "Event": "events"}


class KubeError(RuntimeError):
    """An API call failed: ``status`` is the HTTP status, ``reason`` Kubernetes' reason."""

    def __init__(self, status: int, reason: str, message: str, what: str):
        self.status, self.reason = status, reason
        super().__init__(f"{what}: HTTP {status} {reason}: {message}")


class NotOwned(RuntimeError):
    """The object exists but another owner controls it; the operator will not touch it."""


def object_path(manifest: Mapping[str, Any], *, name: bool = True) -> str:
    """The REST path of ``manifest`` (``/api/v1/namespaces/ns/configmaps/x``)."""
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    meta = manifest["metadata"]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{base}/namespaces/{meta['namespace']}/{_PLURALS[kind]}"
    return f"{path}/{meta['name']}" if name else path


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    if not info.server.startswith("https"):
        return False
    ctx = ssl.create_default_context(cafile=info.ca_path)
    if info.ca_data:
        ctx.load_verify_locations(cadata=base64.b64decode(info.ca_data).decode())
    if info.certificate_path or info.certificate_data:
        cert, key = info.certificate_path, info.private_key_path
        if info.certificate_data:  # ssl needs files; write them where only we can read
            cert = _tmpfile(base64.b64decode(info.certificate_data))
        if info.private_key_data:
            key = _tmpfile(base64.b64decode(info.private_key_data))
        ctx.load_cert_chain(cert, key)
    return ctx


def _tmpfile(data: bytes) -> str:
    f = tempfile.NamedTemporaryFile(delete=False, prefix="kube-", suffix=".pem")
    f.write(data)
    f.close()
    return f.name


class KubeClient:
    """Async client bound to a ``kopf.ConnectionInfo`` provider (called per session, so a
    re-login by kopf — rotated token — is picked up after a 401)."""

    def __init__(self, connection: Callable[[], kopf.ConnectionInfo], *,
                 timeout_s: float = 30.0) -> None:
        self._connection = connection
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._info: kopf.ConnectionInfo | None = None

    async def _open(self) -> tuple[aiohttp.ClientSession, kopf.ConnectionInfo]:
        info = self._connection()
        if self._session is None or info is not self._info:
            if self._session is not None:
                await self._session.close()
            headers = {"Accept": "application/json", "User-Agent": "tradefleet-operator"}
            if info.token:
                headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
            auth = (aiohttp.BasicAuth(info.username, info.password or "")
                    if info.username else None)
            self._session = aiohttp.ClientSession(
                base_url=None, headers=headers, auth=auth, timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=_ssl_context(info), limit=20))
            self._info = info
        return self._session, info

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, *, body: Any = None,
                      content_type: str = "application/json") -> dict[str, Any] | None:
        """One API call; the decoded JSON body, None for 404 on GET/DELETE; KubeError else."""
        session, info = await self._open()
        url = info.server.rstrip("/") + path
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["json"] = body
            kwargs["headers"] = {"Content-Type": content_type}
        async with session.request(method, url, **kwargs) as resp:
            if resp.status == 404 and method in ("GET", "DELETE"):
                return None
            data = await resp.json(content_type=None) if resp.content_length != 0 else {}
            if resp.status >= 400:
                data = data if isinstance(data, dict) else {}
                raise KubeError(resp.status, data.get("reason", ""), data.get("message", ""),
                                f"{method} {path}")
            return data

    async def get(self, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
        """The stored object named like ``manifest``, or None."""
        return await self.request("GET", object_path(manifest))

    async def delete(self, manifest: Mapping[str, Any]) -> bool:
        """Delete; True if it existed."""
        return await self.request("DELETE", object_path(manifest)) is not None

    async def list(self, api_version: str, kind: str, namespace: str,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
        """Objects of ``kind`` in ``namespace`` (filtered by label selector client-side too,
        so it also works against API emulators without selectors)."""
        probe = {"apiVersion": api_version, "kind": kind,
                 "metadata": {"namespace": namespace, "name": ""}}
        path = object_path(probe, name=False)
        if label_selector:
            path += f"?labelSelector={label_selector}"
        data = await self.request("GET", path) or {}
        items = data.get("items", [])
        if label_selector:
            wanted = dict(p.split("=", 1) for p in label_selector.split(","))
            items = [i for i in items if all(
                (i.get("metadata", {}).get("labels") or {}).get(k) == v
                for k, v in wanted.items())]
        return items

    async def apply(self, manifest: Mapping[str, Any], *,
                    owner_uid: str | None = None) -> tuple[str, dict[str, Any] | None]:
        """Create ``manifest`` if missing, merge-patch it if its manifest hash changed.

        Returns ``(outcome, previous)`` with outcome ``created``, ``updated`` or
        ``unchanged`` and the object as it was before (None if created). Raises NotOwned
        when ``owner_uid`` is given and the existing object has another controller, and
        KubeError for API errors.
        """
        existing = await self.get(manifest)
        if existing is None:
            try:
                await self.request("POST", object_path(manifest, name=False), body=manifest)
                return "created", None
            except KubeError as exc:
                if exc.status != 409:
                    raise
                existing = await self.get(manifest)  # lost a race with ourselves
                if existing is None:
                    raise
        meta = existing.get("metadata") or {}
        if owner_uid is not None:
            owners = [o.get("uid") for o in meta.get("ownerReferences") or []
                      if o.get("controller")]
            if owners and owner_uid not in owners or not owners:
                kind, name = manifest["kind"], manifest["metadata"]["name"]
                raise NotOwned(f"{kind} {meta.get('namespace')}/{name} exists and is not "
                               "controlled by this TradingBot; rename the bot or delete it")
        want = manifest["metadata"]["annotations"][MANIFEST_HASH_ANNOTATION]
        if (meta.get("annotations") or {}).get(MANIFEST_HASH_ANNOTATION) == want:
            return "unchanged", existing
        await self.request("PATCH", object_path(manifest), body=manifest,
                           content_type="application/merge-patch+json")
        return "updated", existing


__all__ = ["KubeClient", "KubeError", "NotOwned", "object_path"]
